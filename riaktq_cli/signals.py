"""SIGINT/SIGTERM → a stop flag, so daemons finish cleanly instead of dying mid-write.

The handler only sets a flag and writes one byte to a pipe. It must not
touch a lock: `threading.Event.set()` from a signal handler deadlocks when
the signal lands while the main thread is inside `Event.wait()` holding the
event's internal lock (one SIGTERM in ten hung `scheduler --interval 0s`).
`StopFlag.wait()` sleeps in `select()` on that pipe instead, so a signal
wakes it at once.
"""

import os
import select
import signal
import time


class StopFlag:
    """A stop request that signal handlers can raise safely.

    The same face as threading.Event for the daemons' loops: set(),
    is_set(), wait(timeout). `count` says how many stop requests came
    (a second signal means "stop at once")."""

    def __init__(self):
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.count = 0
        self.signal_name = None

    def set(self):
        self.count += 1
        try:
            os.write(self._write, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: a wake-up is already pending

    def is_set(self):
        return self.count > 0

    def wait(self, timeout=None):
        """Sleep until set or `timeout` seconds pass; True if set."""
        if self.count:
            return True
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while not self.count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                ready, _, _ = select.select([self._read], [], [], left)
            except InterruptedError:
                continue
            if ready:
                try:
                    os.read(self._read, 512)
                except BlockingIOError:
                    pass
        return self.count > 0


def stop_event_on_signals():
    """A StopFlag raised by SIGINT and SIGTERM (each signal counts)."""
    stop = StopFlag()

    def handler(signum, _frame):
        if stop.signal_name is None:
            stop.signal_name = signal.Signals(signum).name
            try:  # os.write: neither logging's locks nor stderr's buffer lock
                os.write(2, f"{time.strftime('%H:%M:%S')} {stop.signal_name} received, finishing up\n".encode())
            except OSError:
                pass
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
