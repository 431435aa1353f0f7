"""The runner thread's small pieces of state, each named for what it tracks.

`Runner` (worker/runner.py) keeps its queues itself; what it knows about
time and its own end lives here: the task at hand's clock (`HeadClock`),
how it is ending (`Ending`), the handler processes that would not start
(`ChildStarts`, with the back-off between them) and the handler output the
log lost (`LostOutput`).
"""

import time

from riaktq_cli.core.backoff import Backoff
from riaktq_cli.core.clock import now_us

RUNNING, DRAINING, ENDING, ENDED = "running", "draining", "ending", "ended"
START_ATTEMPTS = 3    # handler processes that die before doing any work, in a row
START_WAITS = (0.2, 1.0)   # seconds before the 2nd and the 3rd start


class HeadClock:
    """When the task at hand started: monotonic (its time limit) and wall
    clock in µs (its `sat`); None while nothing is at hand."""

    def __init__(self):
        self.started = None
        self.sat = None

    def begin(self):
        self.started, self.sat = time.monotonic(), now_us()

    def clear(self):
        self.started = self.sat = None

    @property
    def running(self):
        return self.started is not None

    def elapsed_us(self, now=None):
        """µs since the task at hand started (0 if none)."""
        if self.started is None:
            return 0
        return int(((time.monotonic() if now is None else now) - self.started) * 1e6)


class Ending:
    """Running, draining (no new work; the task at hand has until
    `grace_until`), ending (stop at once) or ended (the thread is gone)."""

    def __init__(self):
        self.mode = RUNNING
        self.grace_until = None

    @property
    def running(self):
        return self.mode == RUNNING

    def drain(self, grace):
        if self.mode == RUNNING:
            self.mode = DRAINING
            self.grace_until = time.monotonic() + grace

    def end_now(self):
        if self.mode in (RUNNING, DRAINING):
            self.mode = ENDING

    def grace_over(self, now):
        return self.mode == DRAINING and now >= self.grace_until


class ChildStarts:
    """Handler processes that died before doing any work, in a row, and why
    the last one did; the waits between the next starts."""

    def __init__(self):
        self.waits = Backoff(START_WAITS[0], START_WAITS[1], factor=START_WAITS[1] / START_WAITS[0],
                             attempts=START_ATTEMPTS)
        self.last_failure = None

    def failed(self, why):
        self.last_failure = why
        self.waits.failed()

    def worked(self):
        self.waits.reset()

    @property
    def failures(self):
        return self.waits.failures


class LostOutput:
    """Handler output lines the log could not take: in this handler process
    (as it last said) and in the earlier ones."""

    def __init__(self):
        self.child = 0
        self.earlier = 0

    def new_child(self):
        self.earlier += self.child
        self.child = 0

    @property
    def total(self):
        return self.earlier + self.child
