"""Log lines on stderr: one line per event, as text or as JSON.

One-shot commands (open, get, report...) keep the Riak client's per-node
warnings to themselves: the user gets the one-line error at the end. The
daemons (scheduler, worker, observe) call `daemon_logging()` so that an
operator sees nodes failing and coming back while they keep running.

`--log-format json` (or `[log] format = "json"`) writes one JSON object a
line for log pipelines: time, level, role (the subcommand: scheduler,
worker...), instance, and the task id and transition where a line is about
one. Text lines escape control characters, so a task id or an instance
record written by another program cannot drive the terminal.

Writing a log line never raises: a daemon whose stderr went away (EPIPE,
EIO on a closed terminal) keeps doing its work, and counts the lines it
could not write (`lost_lines`; a worker shows them in its instance record,
with the handler output its handler process could not write). A process
started with stderr closed (`2>&-`) gets /dev/null there first, so that no
file it opens later takes fd 2 and receives log lines or a handler's output.

In the JSON format everything a process writes is JSON, one object a line:
Python warnings go through logging, an uncaught exception (or `-v`'s
traceback of a failure) is one line with the traceback in `exception`, and
a handler's output is relayed line by line (worker/output.py).
"""

import json
import logging
import os
import sys
import time
import traceback

from riaktq_cli.core.output import escape

FORMATS = ("text", "json")

_stream = None      # where setup_logging sends log lines
_stamp = [0, ""]    # (second, "HH:MM:SS") so a burst formats the time once
_format = ["text"]
_context = {}       # role, instance: added to every JSON line
_lost = [0]         # log lines that could not be written


_iso_second = [None, ""]  # (second, "YYYY-MM-DDTHH:MM:SS") formatted once a second
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str).encode


def _iso(seconds):
    """UTC time with milliseconds, as log pipelines parse it."""
    whole = int(seconds)
    if whole != _iso_second[0]:
        _iso_second[0], _iso_second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_iso_second[1]}.{int((seconds - whole) * 1000):03d}Z"


def json_line(level, message, created=None, **fields):
    """The JSON object of one log line (as text, without the newline)."""
    record = {"time": _iso(time.time() if created is None else created), "level": level}
    record.update(_context)
    record["message"] = message
    for key, value in fields.items():
        if value is not None:
            record[key] = value
    return _encode(record)


def signal_safe_line(message):
    """One INFO line, formatted as the log format asks, as bytes for
    os.write from a signal handler (which must not take logging's locks)."""
    if _format[0] == "json":
        return (json_line("info", message) + "\n").encode()
    return f"{time.strftime('%H:%M:%S')} {message}\n".encode()


class TextFormatter(logging.Formatter):
    """`HH:MM:SS message`, control characters escaped."""

    def __init__(self):
        super().__init__("%(asctime)s %(message)s", "%H:%M:%S")

    def formatMessage(self, record):
        record.message = escape(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra={"task": ..., "transition": ...}`
    fields pass through."""

    FIELDS = ("task", "transition", "instance")

    def format(self, record):
        fields = {k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_line(record.levelname.lower(), record.getMessage(), record.created, **fields)


class _SafeHandler(logging.StreamHandler):
    """A StreamHandler that drops a line it cannot write instead of printing
    logging's own error report (to the same broken stream)."""

    def handleError(self, record):
        _lost[0] += 1


def lost_lines():
    """How many log lines this process could not write (its stderr was gone)."""
    return _lost[0]


def ensure_standard_fds():
    """Open /dev/null on fds 0-2 where they are closed (`2>&-`), so that no
    file opened later (the SQLite store, a pipe to the handler process)
    lands there and gets written as if it were stderr; and give Python a
    sys.stderr (None when fd 2 was closed at start)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # cannot happen: the lowest free fd is `fd`
                os.dup2(opened, fd)
                os.close(opened)
            os.set_inheritable(fd, True)  # as a standard fd is: the handler process gets it
    for name, fd in (("stdout", 1), ("stderr", 2)):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False, errors="backslashreplace"))


def setup_logging(verbose=False, fmt="text"):
    global _stream
    ensure_standard_fds()
    _stream = sys.stderr
    root = logging.getLogger("riaktq")
    if not root.handlers:
        root.addHandler(_SafeHandler(sys.stderr))
        root.propagate = False
    set_format(fmt)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("riaktq.riak").setLevel(logging.DEBUG if verbose else logging.ERROR)


def set_format(fmt):
    """Switch every riaktq log line to `fmt` (text or json)."""
    _format[0] = fmt
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handlers = logging.getLogger("riaktq").handlers
    for handler in handlers:
        handler.setFormatter(formatter)
    if fmt == "json":
        # Warnings and uncaught exceptions would be raw text otherwise.
        logging.captureWarnings(True)
        warnings_log = logging.getLogger("py.warnings")
        for handler in handlers:
            if handler not in warnings_log.handlers:
                warnings_log.addHandler(handler)
        warnings_log.propagate = False
        sys.excepthook = _json_excepthook
        import threading
        threading.excepthook = lambda args: _json_excepthook(args.exc_type, args.exc_value, args.exc_traceback)


def _json_excepthook(exc_type, exc, tb):
    write_failure(f"uncaught {exc_type.__name__}: {exc}", "".join(traceback.format_exception(exc_type, exc, tb)))


def write_failure(message, exception=None):
    """A process's last word (a failure, and with -v its traceback) on
    stderr: one JSON line in the JSON format, else the message as is and
    the traceback before it."""
    if _format[0] == "json":
        text = json_line("error", message.removesuffix("\n"), exception=exception) + "\n"
    else:
        text = (exception or "") + message
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        _lost[0] += 1


def log_format():
    """The format log lines are written in now: text or json."""
    return _format[0]


def set_context(**fields):
    """Fields every JSON line carries from now on (role, instance)."""
    _context.update((k, v) for k, v in fields.items() if v is not None)


def daemon_logging():
    """Long-running processes: show node warnings too."""
    riak = logging.getLogger("riaktq.riak")
    if riak.level > logging.WARNING:
        riak.setLevel(logging.WARNING)


def info_line(text, **fields):
    """Write one INFO line as the logging module would, at a fraction of
    its cost: the scheduler logs every transition, thousands per second.
    `fields` (task, transition, instance) go into the JSON form."""
    if _stream is None or not logging.getLogger("riaktq").isEnabledFor(logging.INFO):
        return
    if _format[0] == "json":
        line = json_line("info", text, **fields)
    else:
        now = int(time.time())
        if now != _stamp[0]:
            _stamp[0], _stamp[1] = now, time.strftime("%H:%M:%S", time.localtime(now))
        line = f"{_stamp[1]} {text if text.isprintable() else escape(text)}"
    try:
        _stream.write(line + "\n")
    except (OSError, ValueError):
        _lost[0] += 1  # stderr is gone (EPIPE, EIO, closed): the work goes on without it


def error_line(exc):
    """One refused item of a command that goes on with the others: the same
    prefix and the same stream as the failure that ends a command."""
    from riaktq_cli.core.errors import PREFIX
    write_failure(f"{PREFIX}{exc}\n")


def report_failure(exc, verbose=False):
    """Tell the user about `exc` in one line on stderr; return the exit code.

    The one place both entry lanes (the fast `open` and the click CLI) turn
    an exception into what a user sees: a RiaktqError is its message; any
    other exception is a bug, named in one line. `-v` adds the traceback.
    """
    trace = None
    if verbose:
        import traceback
        trace = "".join(traceback.format_exception(exc))
    from riaktq_cli.core.errors import PREFIX, RiaktqError
    if isinstance(exc, RiaktqError):
        if str(exc) or trace:
            write_failure(f"{PREFIX}{exc}\n" if str(exc) else "", trace)
        return exc.exit_code
    write_failure(f"riaktq: internal error: {type(exc).__name__}: {exc} (run with -v for details)\n", trace)
    return 70
