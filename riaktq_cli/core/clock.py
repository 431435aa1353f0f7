"""Time in integer microseconds since the epoch, the unit of every task field.

Kept in one place so tests can move the clock (the observer's day boundary)
by patching a single function.
"""

import time


def now_us():
    """Current wall-clock time in µs since the epoch."""
    return time.time_ns() // 1000


def seconds_to_us(seconds):
    return int(seconds * 1_000_000)


class Clock:
    """The monotonic clock and sleep, behind one object a test can replace
    (backoff.py takes one); reads `time` at call time, so the simulation's
    rebinding of this module's `time` reaches it too."""

    def monotonic(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(seconds)


SYSTEM = Clock()
