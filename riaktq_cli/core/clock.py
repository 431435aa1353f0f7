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
