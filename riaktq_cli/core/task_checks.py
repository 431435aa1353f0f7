"""Checks of what a user gives for a task: ids, tags and bounded numbers.

Kept apart from task.py (the record and its transitions) because every
entry point -- `open`, batch lines, the Python API, config -- runs them
before a task exists, and each failure is one clear TransitionError.
"""

from riaktq_cli.core.errors import TransitionError

MAX_ID_LENGTH = 200
# Bounds of the numbers a user gives. Priorities stay within ±2^53 (exact in
# JSON for every consumer, and far inside the int64 range SQLite and the Riak
# `todo_bin` term can order), and lowering one saturates at the floor.
PRIORITY_MIN, PRIORITY_MAX = -(2 ** 53), 2 ** 53
RETRY_MAX = 1000
ATTEMPTS_MAX = 1000
TIME_LIMIT_MAX = 366 * 86400.0  # seconds
RETRY_DELAY_MAX = 366 * 86400.0  # seconds, as the time limit


def validate_id(task_id):
    """Ids become Riak keys and index terms: keep them printable and bounded."""
    if not task_id or not isinstance(task_id, str):
        raise TransitionError("a task id must be a non-empty string")
    if len(task_id) > MAX_ID_LENGTH:
        raise TransitionError(f"task id longer than {MAX_ID_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in task_id):
        raise TransitionError(f"task id {task_id!r} contains whitespace or control characters")
    return task_id


def validate_tag(tag):
    # `;` separates the tag key from the order in the Riak `todotag_bin`
    # term, and control characters cannot travel in an HTTP header.
    if not tag or not isinstance(tag, str) or any(ch.isspace() or ch in ",;" or not ch.isprintable()
                                                  for ch in tag):
        raise TransitionError(f"bad tag {tag!r}: tags are non-empty words without spaces, commas or semicolons")
    return tag


def check_int(value, name, low, high):
    """A whole number within [low, high], or one clear TransitionError."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, bool) or float(value) != int(value):
                raise ValueError
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            raise TransitionError(f"{name} must be a whole number, not {value!r}") from None
    if not low <= value <= high:
        raise TransitionError(f"{name} {value} is out of range ({low} to {high})")
    return value


def check_time_limit(seconds):
    """None, or a positive number of seconds up to TIME_LIMIT_MAX."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= TIME_LIMIT_MAX:
        raise TransitionError(f"time limit {seconds!r} is out of range (above 0, up to 366 days)")
    return float(seconds)


def check_retry_delay(seconds):
    """None, or seconds from 0 up to RETRY_DELAY_MAX."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
            not 0 <= seconds <= RETRY_DELAY_MAX:
        raise TransitionError(f"retry delay {seconds!r} is out of range (0 to 366 days)")
    return float(seconds)
