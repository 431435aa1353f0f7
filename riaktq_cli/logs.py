"""Log lines on stderr: one line per event, timestamped, no tracebacks.

One-shot commands (open, get, report...) keep the Riak client's per-node
warnings to themselves: the user gets the one-line error at the end. The
daemons (scheduler, worker, observe) call `daemon_logging()` so that an
operator sees nodes failing and coming back while they keep running.
"""

import logging
import sys
import time

_stream = None      # where setup_logging sends log lines
_stamp = [0, ""]    # (second, "HH:MM:SS") so a burst formats the time once


def setup_logging(verbose=False):
    global _stream
    _stream = sys.stderr
    root = logging.getLogger("riaktq")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("riaktq.riak").setLevel(logging.DEBUG if verbose else logging.ERROR)


def daemon_logging():
    """Long-running processes: show node warnings too."""
    riak = logging.getLogger("riaktq.riak")
    if riak.level > logging.WARNING:
        riak.setLevel(logging.WARNING)


def info_line(text):
    """Write one INFO line as the logging module would, at a fraction of
    its cost: the scheduler logs every transition, thousands per second."""
    if _stream is None or not logging.getLogger("riaktq").isEnabledFor(logging.INFO):
        return
    now = int(time.time())
    if now != _stamp[0]:
        _stamp[0], _stamp[1] = now, time.strftime("%H:%M:%S", time.localtime(now))
    try:  # stderr gone (EPIPE/EIO) must not kill the thread that logs
        _stream.write(f"{_stamp[1]} {text}\n")
    except (OSError, ValueError):
        pass
