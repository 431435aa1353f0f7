"""Commands on single tasks: open, get, tasks, rm.

Thin click commands over the Python API (`app.queue()`, riaktq_cli/api/queue.py):
they parse and print; checking, writing and waiting are the API's, so a
script and an application get the same answers."""

import json
import sys

import click

from riaktq_cli.cli import partial
from riaktq_cli.core import task as tasks_mod
from riaktq_cli.api.inputs import DURATION_FIELDS, OPEN_FIELDS, make_task
from riaktq_cli.core.clock import now_us
from riaktq_cli.cli.completion import complete_task_id
from riaktq_cli.core.errors import (
    BadInput,
    ConfigError,
    DurationError,
    Incomplete,
    StoreUnavailable,
)
from riaktq_cli.runtime.logs import error_line
from riaktq_cli.core.durations import format_duration, parse_duration
from riaktq_cli.core.output import display, escape, render, utc_time
from riaktq_cli.cli.params import COUNT_MAX, DURATION, IDENTIFIER
from riaktq_cli.core.task_checks import PRIORITY_MAX, PRIORITY_MIN, RETRY_MAX

BATCH_CHUNK = 500
# the model's bounds (task_checks), checked here to name the line's field
BATCH_BOUNDS = {"priority": (PRIORITY_MIN, PRIORITY_MAX), "retry": (0, RETRY_MAX)}
FORMATS = click.Choice(["table", "json"])


def _read_input(text, path):
    if text is not None and path is not None:
        raise click.UsageError("give the input once: --in TEXT or --in-file PATH, not both")
    if path is not None:
        if path == "-":
            return sys.stdin.buffer.read()
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if text is not None:
        return text.encode("utf-8", "surrogateescape")
    raise click.UsageError("give the task input with --in TEXT or --in-file PATH (- for stdin)")


@click.command("open")
@click.argument("task_id", metavar="ID", required=False)
@click.option("--in", "text", metavar="TEXT", help="The task input, as text.")
@click.option("--in-file", "in_file", metavar="PATH", help="Read the input from a file (- for stdin); any bytes.")
@click.option("--priority", type=click.IntRange(tasks_mod.PRIORITY_MIN, tasks_mod.PRIORITY_MAX), default=0,
              show_default=True,
              help="Higher runs first; may be negative.")
@click.option("--retry", type=click.IntRange(0, tasks_mod.RETRY_MAX), default=0, show_default=True,
              help="Restarts allowed after a failure.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="A feature the instance must offer (repeatable).")
@click.option("--time-limit", type=DURATION, metavar="DURATION",
              help="Longest run; past it the run is stopped and fails. [default: the worker's time_limit]")
@click.option("--max-attempts", type=int, metavar="N",
              help="Runs that may die with their worker or handler process before the task fails."
                   " [default: scheduler.max_attempts]")
@click.option("--delay", type=DURATION, metavar="DURATION", help="Not assigned before this long from now.")
@click.option("--at", metavar="TIME", help="Not assigned before this time: ISO 8601 with a timezone"
                                           " (2026-12-01T06:00:00Z).")
@click.option("--retry-delay", type=DURATION, metavar="DURATION",
              help="A restart waits this long, doubling per run up to scheduler.retry_delay_max."
                   " [default: scheduler.retry_delay]")
@click.option("--wait", is_flag=True, help="Block until the task is done or failed and print its output.")
@click.option("--timeout", type=DURATION, metavar="DURATION", help="With --wait: give up after this long (exit 2).")
@click.option("--batch", metavar="FILE", help="Open many tasks from JSON lines (- for stdin).")
@click.pass_obj
def open_cmd(app, task_id, text, in_file, priority, retry, tags, time_limit, max_attempts, delay, at, retry_delay,
             wait, timeout, batch):
    """Put a task in the queue.

    \b
    Examples:
      riaktq open task-42 --in "hello"
      riaktq open resize-7 --in-file photo.jpg --priority 5 --tag gpu
      riaktq open job-1 --in 'x' --wait --timeout 30s   # exit 0 done, 1 failed, 2 timeout
      riaktq open render-3 --in scene --time-limit 10m --max-attempts 2
      riaktq open report-9 --in q3 --delay 10m          # or --at 2026-12-01T06:00:00Z
      riaktq open fetch-5 --in url --retry 5 --retry-delay 30s   # 30s, 1m, 2m, ...
      riaktq open --batch tasks.jsonl

    A batch file holds one JSON object per line: {"id": "t1", "in": "text"
    or {"base64": "..."}, "priority": 0, "retry": 0, "tags": ["gpu"],
    "time_limit": "10m", "max_attempts": 3, "delay": "10m" or "at":
    "2026-12-01T06:00:00Z", "retry_delay": "30s"}.
    Malformed lines open nothing; ids that already exist are reported and
    the rest are opened.
    """
    if batch is not None:
        if task_id or text is not None or in_file is not None or wait:
            raise click.UsageError("--batch takes the tasks from the file; give no ID, --in or --wait with it")
        _open_batch(app, batch)
        return
    if not task_id:
        raise click.UsageError("give the task ID (or --batch FILE)")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout goes with --wait")
    data = _read_input(text, in_file)
    options = {"priority": priority, "retry": retry, "tags": tags, "time_limit": time_limit,
               "max_attempts": max_attempts, "delay": delay, "at": at, "retry_delay": retry_delay}
    try:
        make_task(task_id, data, **options)  # before the store is opened (or created)
    except BadInput as exc:
        raise click.UsageError(str(exc)) from None
    queue = app.queue()
    queue.open(task_id, data, **options)
    if wait:  # as `riaktq wait`: 0 done, 1 failed, 2 (one line) timeout
        from riaktq_cli.cli.commands.control import finish_wait
        finish_wait(queue, [task_id], timeout, lambda finished: _print_output(finished[0].out or b""))


def _print_output(out):
    """The exact bytes on a pipe or file; on a terminal, text with control
    characters escaped (lines and tabs kept) and binary as its size."""
    if not sys.stdout.isatty():
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
        return
    try:
        text = escape(out.decode("utf-8"), keep_newlines=True)
    except UnicodeDecodeError:
        text = f"<{len(out)} bytes, binary: redirect to a file or pipe for the bytes>"
    click.echo(text if not text or text.endswith("\n") else text + "\n", nl=False)


def _parse_batch_line(line, now):
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    unknown = set(item) - (OPEN_FIELDS - {"data"}) - {"in"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    if not isinstance(item.get("id"), str):
        raise ValueError('"id" must be a string')
    for key in ("priority", "retry"):
        if not isinstance(item.get(key, 0), int) or isinstance(item.get(key), bool):
            raise ValueError(f'"{key}" must be an integer')
        low, high = BATCH_BOUNDS[key]
        if not low <= item.get(key, 0) <= high:
            raise ValueError(f'"{key}" out of range ({low} to {high})')
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError('"tags" must be a list of strings')
    try:
        spec = {"id": item["id"], "data": tasks_mod.view_to_bytes(item.get("in")),
                "priority": item.get("priority", 0), "retry": item.get("retry", 0), "tags": tags,
                "max_attempts": item.get("max_attempts"), "at": item.get("at")}
        for key in DURATION_FIELDS:
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f'"{key}" must be a duration such as "30s"')
            spec[key] = None if value is None else parse_duration(value, key)
        if spec["at"] is not None and not isinstance(spec["at"], str):
            raise ValueError('"at" must be an ISO 8601 time such as "2026-12-01T06:00:00Z"')
        make_task(**spec, now=now)  # every line is checked before any task is opened
        return spec
    except (BadInput, ValueError, DurationError) as exc:
        raise ValueError(str(exc)) from None


def _open_batch(app, source):
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from None
    tasks, problems, seen = [], [], {}
    with stream:
        try:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    spec = _parse_batch_line(line, now_us())
                except ValueError as exc:
                    problems.append(f"line {number}: {exc}")
                    continue
                if spec["id"] in seen:
                    problems.append(f"line {number}: id {spec['id']!r} repeats line {seen[spec['id']]}")
                    continue
                seen[spec["id"]] = number
                tasks.append((number, spec))
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: not UTF-8 text") from None
    if problems:
        for p in problems:
            error_line(escape(p))
        raise BadInput(f"{len(problems)} bad line(s) in {source}; no task opened")
    queue = app.queue()
    failed = 0
    for start in range(0, len(tasks), BATCH_CHUNK):  # one short write transaction a chunk
        chunk = tasks[start:start + BATCH_CHUNK]
        try:
            outcomes = [o.error for o in queue.open_many([spec for _, spec in chunk])]
        except StoreUnavailable as exc:
            _batch_cut_short(exc, chunk, tasks[start + BATCH_CHUNK:], failed)
        for (number, _spec), error in zip(chunk, outcomes):
            if error is not None:
                failed += 1
                error_line(f"line {number}: {error}")
    opened = len(tasks) - failed
    sys.stderr.write(f"riaktq: opened {opened} task(s)" + (f", {failed} refused\n" if failed else "\n"))
    if failed:
        raise Incomplete()


def _batch_cut_short(exc, chunk, rest, failed):
    """No node answered for some lines of a chunk: report the lines refused
    so far, then raise StoreUnavailable (exit 3) naming every line not
    opened -- those of the chunk that did not land (all of it, without a
    PartialCreate's `results`) and every later line, which is not tried."""
    results = getattr(exc, "results", None) or [exc] * len(chunk)
    missing = []
    for (number, _spec), error in zip(chunk, results):
        if isinstance(error, StoreUnavailable):
            missing.append(number)
        elif error is not None:
            failed += 1
            error_line(f"line {number}: {error}")
    missing += [number for number, _ in rest]
    raise StoreUnavailable(f"{len(missing)} line(s) not opened ({_line_ranges(missing)}), "
                           f"{failed} refused: {exc}")


def _line_ranges(numbers):
    """[1, 2, 3, 7, 9, 10] -> "lines 1-3, 7, 9-10"."""
    spans = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return ("line " if len(numbers) == 1 else "lines ") + text


@click.command("get")
@click.argument("task_id", metavar="ID", type=IDENTIFIER, shell_complete=complete_task_id)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--history", "show_history", is_flag=True,
              help="Also its last transitions: time, transition, instance, run, reason.")
@click.pass_obj
def get_cmd(app, task_id, fmt, show_history):
    """Show one task (`--format json` for scripts).

    The table escapes control characters and shows long or binary input
    and output by their size; `--format json` has the exact values.
    `--history` adds the task's last 20 transitions (assign, close,
    restart, rollback, requeue, cancel), oldest first.

    \b
    Examples:
      riaktq get task-42
      riaktq get task-42 --format json | jq -r .out
      riaktq get task-42 --history
    """
    view = app.queue(create=False).get(task_id).to_view(history=show_history)
    if fmt == "json":
        click.echo(json.dumps(view, ensure_ascii=False))
        return
    from tabulate import tabulate
    entries = view.pop("history", None)
    rows = [(k, _human(k, v)) for k, v in view.items()]
    click.echo(tabulate(rows, tablefmt="plain", disable_numparse=True))
    if entries is not None:
        click.echo("\nhistory:" if entries else "\nhistory: none yet")
        if entries:
            click.echo(tabulate([(_human("at", e["at"]), e["transition"], escape(e["instance"] or "-"), e["run"],
                                  escape(e["reason"] or "")) for e in entries],
                                headers=["TIME", "TRANSITION", "INSTANCE", "RUN", "REASON"], disable_numparse=True))


GET_WIDTH = 200  # characters of `in`/`out` the get table shows


def _human(key, value):
    if value is None:
        return "-"
    if key in ("sat", "cat", "due", "at"):
        return utc_time(value, micro=True)
    if key == "laf":
        return f"{value / 1e6:.6f}s"
    if key == "retry_delay":
        return format_duration(value)
    if key == "tags":
        return escape(",".join(value)) or "-"
    if key in ("in", "out"):
        return display(value, GET_WIDTH)
    return escape(value) if isinstance(value, str) else value


TASK_COLUMNS = [("id", "ID"), ("status", "STATUS"), ("priority", "PRIO"), ("retry", "RETRY"),
                ("assignee", "ASSIGNEE"), ("tags", "TAGS"), ("cat", "CREATED"), ("due", "DUE"), ("in", "IN"),
                ("out", "OUT")]


@click.command("tasks")
@click.option("--status", type=click.Choice(tasks_mod.STATUSES), help="Only tasks with this status.")
@click.option("--limit", type=click.IntRange(0, COUNT_MAX), default=100, show_default=True,
              help="At most this many (0: all).")
@click.option("--tag", metavar="TAG", help="Only tasks that need this tag.")
@click.option("--assignee", metavar="NAME", type=IDENTIFIER, help="Only tasks assigned to this instance.")
@click.option("--id-prefix", metavar="TEXT", type=IDENTIFIER, help="Only tasks whose id starts with TEXT.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def tasks_cmd(app, status, limit, tag, assignee, id_prefix, fmt):
    """List tasks, oldest first.

    DUE is when a delayed or backed-off todo task may run (json: `due`,
    µs; empty once it may). The table escapes control characters and shortens input and output;
    json and csv have the exact values. Filters apply while the tasks are
    read page by page. When --limit cuts the listing, a line on stderr says
    so (in every format).

    \b
    Examples:
      riaktq tasks --status todo
      riaktq tasks --status nextup --assignee echo-1
      riaktq tasks --tag gpu --id-prefix resize- --limit 0
      riaktq tasks --status failed --format csv > failed.csv
    """
    queue = app.queue(create=False)
    found = queue.tasks(status, limit + 1 if limit else None, tag=tag, assignee=assignee, id_prefix=id_prefix)
    rows = [task.to_view() for task in found]
    if limit and len(rows) > limit:  # one more than asked was read: the listing is cut
        rows.pop()
        click.echo(f"riaktq: showing the first {limit} matching tasks; more match"
                   " (--limit 0 shows all, --limit N more)", err=True)
    if fmt == "table":
        for row in rows:
            row["cat"] = utc_time(row["cat"])
            row["due"] = "" if row["due"] is None else utc_time(row["due"])
            row["in"] = display(row["in"], 24)
            row["out"] = display(row["out"], 32)
    render(rows, TASK_COLUMNS, fmt)
    partial.warn(queue)   # an index listing: say if the store may have left tasks out


@click.command("rm")
@click.argument("task_ids", nargs=-1, required=True, metavar="ID...", type=IDENTIFIER, shell_complete=complete_task_id)
@click.pass_obj
def rm_cmd(app, task_ids):
    """Remove tasks from the store.

    A task a worker is running still runs; its result is then dropped.
    Exit 1 if any id was missing (one line each); the others are removed.

    \b
    Examples:
      riaktq rm task-42 task-43
      riaktq purge --status done --age 30d     # many at once, by age
    """
    missing = 0
    for outcome in app.queue(create=False).rm(task_ids):
        if not outcome.ok:
            missing += 1
            error_line(outcome.error)
    if missing:
        raise Incomplete()
