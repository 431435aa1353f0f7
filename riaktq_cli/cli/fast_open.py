"""The `riaktq` entry point: a fast lane for `open`, then the full click CLI.

`riaktq open ID --in TEXT` is what scripts run thousands of times, so its
start-up time is the queue's enqueue cost from a shell. click alone takes
longer to import than the interpreter takes to start; this module parses the
common shape of `open` with no import beyond the API and the store, and
hands every other command line (help, --batch, --wait, anything unusual or
wrong) to click, which gives the full checks and messages. Both lanes end in
the same `Queue.open` (riaktq_cli/api/queue.py), so they cannot disagree on what
is accepted or written.
"""

import sys

VALUE_OPTIONS = {"--in": "text", "--priority": "priority", "--retry": "retry", "--tag": "tags",
                 "--time-limit": "time_limit", "--max-attempts": "max_attempts", "--delay": "delay",
                 "--at": "at", "--retry-delay": "retry_delay"}


def parse_simple_open(argv):
    """(config_path, fields) for `[--config P] open ID --in T [--priority N]
    [--retry N] [--tag T]... [--time-limit D] [--max-attempts N] [--delay D |
    --at TIME] [--retry-delay D]`, or None when the line is anything else."""
    args = list(argv)
    config_path = None
    if args[:1] == ["--config"] and len(args) >= 2:
        config_path, args = args[1], args[2:]
    if len(args) < 2 or args[0] != "open" or args[1].startswith("-"):
        return None
    fields = {"id": args[1], "text": None, "priority": "0", "retry": "0", "tags": [],
              "time_limit": None, "max_attempts": None, "delay": None, "at": None, "retry_delay": None}
    rest = args[2:]
    if len(rest) % 2:
        return None
    for flag, value in zip(rest[::2], rest[1::2]):
        key = VALUE_OPTIONS.get(flag)
        if key is None:
            return None
        if key == "tags":
            fields["tags"].append(value)
        elif key == "text" and fields["text"] is not None:
            return None
        else:
            fields[key] = value
    if fields["text"] is None:
        return None
    try:
        fields["priority"] = int(fields["priority"])
        fields["retry"] = int(fields["retry"])
        if fields["max_attempts"] is not None:
            fields["max_attempts"] = int(fields["max_attempts"])
    except ValueError:
        return None
    if fields["retry"] < 0:
        return None
    return config_path, fields


def fast_open(argv):
    """Open the task if the line is a simple `open`; None to fall back."""
    parsed = parse_simple_open(argv)
    if parsed is None:
        return None
    config_path, fields = parsed
    from riaktq_cli.api.inputs import make_task
    from riaktq_cli.core.errors import BadInput
    task_id, data = fields.pop("id"), fields.pop("text").encode("utf-8", "surrogateescape")
    try:
        make_task(task_id, data, **fields)  # checked before the store is opened (or created)
    except BadInput:
        return None  # click reports it as a usage error
    from riaktq_cli.api.queue import Queue
    with Queue.from_config(config_path) as queue:
        queue.open(task_id, data, **fields)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        rc = fast_open(argv)
    except Exception as exc:
        from riaktq_cli.runtime.logs import report_failure
        sys.exit(report_failure(exc))
    if rc is not None:
        sys.exit(rc)
    from riaktq_cli.cli.main import main as full_main
    full_main(argv)
