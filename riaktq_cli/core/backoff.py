"""Growing waits between attempts: the one back-off every retry loop uses.

A `Backoff` counts the failures of one run of attempts and says how long
to wait after each: `base`, then `factor` times more per failure, never
more than `cap`; with `jitter` (a fraction) each wait is drawn from
[wait * (1 - jitter), wait], so processes that failed together do not
retry together. After `attempts` failures (None: never) it is exhausted
and `retry` says so instead of waiting. A wait ends early when `stop` is
set: a threading.Event or StopFlag (anything with `wait(seconds)`), or a
callable polled every POLL seconds (the runner touches its liveness tick
there). The clock (clock.py) and the random source are parameters, so
tests run a back-off on a fake clock without real sleeps.
"""

import random

from riaktq_cli.core.clock import SYSTEM

POLL = 0.05   # seconds between checks of a callable `stop` while waiting


class Backoff:
    def __init__(self, base, cap, *, factor=2.0, jitter=0.0, attempts=None, clock=SYSTEM, rand=random.random):
        if base < 0 or cap < base or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("back-off: want 0 <= base <= cap, factor >= 1, 0 <= jitter <= 1")
        self.base, self.cap, self.factor, self.jitter = base, cap, factor, jitter
        self.attempts = attempts
        self.clock = clock
        self.rand = rand
        self.failures = 0

    def failed(self):
        """Count one more failed attempt."""
        self.failures += 1

    def reset(self):
        """An attempt succeeded: the next failure waits `base` again."""
        self.failures = 0

    @property
    def exhausted(self):
        """No attempt left: `attempts` of them have failed."""
        return self.attempts is not None and self.failures >= self.attempts

    def delay(self, failures=None):
        """The wait after `failures` failures (default: those counted so
        far), before jitter: base * factor ** (failures - 1), at most cap;
        0 before any failure. Grown by repeated multiplication, as the
        loops it replaced did, so the values are the same to the bit."""
        n = self.failures if failures is None else failures
        if n <= 0:
            return 0.0
        wait = self.base
        for _ in range(n - 1):
            if wait >= self.cap:
                break
            wait *= self.factor
        return min(wait, self.cap)

    def next_wait(self):
        """The wait for the failures counted so far, with jitter drawn."""
        wait = self.delay()
        if self.jitter:
            wait -= wait * self.jitter * self.rand()
        return wait

    def wait(self, stop=None):
        """Sleep the current wait; False if `stop` was set meanwhile."""
        return sleep(self.next_wait(), stop, self.clock)

    def retry(self, stop=None):
        """After a failed attempt: count it, and False if that was the
        last one (no wait) or a stop came during the wait, else True once
        the wait is over."""
        self.failed()
        if self.exhausted:
            return False
        return self.wait(stop)


def sleep(seconds, stop=None, clock=SYSTEM):
    """Sleep `seconds` on `clock`; False (early) when `stop` is set."""
    if stop is None:
        if seconds > 0:
            clock.sleep(seconds)
        return True
    if hasattr(stop, "wait"):
        return not stop.wait(seconds)
    end = clock.monotonic() + seconds
    while not stop():
        left = end - clock.monotonic()
        if left <= 0:
            return True
        clock.sleep(min(POLL, left))
    return False
