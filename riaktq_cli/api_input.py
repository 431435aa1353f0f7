"""Checking what an application hands the API (riaktq_cli/api.py).

One place turns the values a caller gives -- bytes or text, seconds or
"10m", a mapping per task -- into checked tasks and bounds, through the same
`task.new_task` every command uses, and turns every refusal into BadInput
(exit 2), so the API and the command line refuse the same things alike.
Imports stay as light as the fast `riaktq open` lane needs.
"""

from __future__ import annotations

from riaktq_cli import task as transitions
from riaktq_cli.durations import MAX_SECONDS
from riaktq_cli.errors import BadInput, DurationError, TransitionError
from riaktq_cli.task import STATUSES, Task

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` costs `riaktq open` start-up time
    from collections.abc import Iterable, Mapping
    from typing import Any

# The keyword arguments of `open` (and the keys of an `open --batch` line,
# where "in" stands for "data"): one list for the API and the batch reader.
OPEN_FIELDS = frozenset({"id", "data", "priority", "tags", "retry", "max_attempts", "time_limit", "delay", "at",
                         "retry_delay"})
DURATION_FIELDS = ("time_limit", "delay", "retry_delay")   # seconds, or text such as "10m"
MOMENT_RANGE = 253_402_387_200 * 1_000_000   # µs: 10000-01-02 UTC, past any ISO 8601 text (year 9999, any offset)


def seconds(value: float | str | None, what: str) -> float | None:
    """A duration given as seconds or as text such as "10m": the one check
    every duration the API takes goes through (delay, time limit, retry
    delay, age, timeout). A number must be finite and within what the
    command line's durations allow (0 to MAX_SECONDS): nan, inf or 1e30
    would otherwise escape as ValueError/OverflowError where the µs
    arithmetic or the store meets them."""
    if value is None:
        return None
    if isinstance(value, str):
        from riaktq_cli.durations import parse_duration
        try:
            return parse_duration(value, what)
        except DurationError as exc:
            raise BadInput(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{what} must be a number of seconds or a duration such as '30s', not {value!r}")
    if value < 0:
        raise BadInput(f"{what} {value!r} is negative")
    if not value <= MAX_SECONDS:   # also nan
        raise BadInput(f"{what} {value!r} is not a number of seconds up to 100 years")
    return value


def moment(value: int, what: str) -> int:
    """A time in µs since the epoch given as a number (`at`, a
    `created_before_us` bound): a whole number within ±MOMENT_RANGE, the
    span ISO 8601 text (years 1 to 9999) can name, so it fits the stores'
    64-bit integers and fixed-width index terms; BadInput if not."""
    return checked(transitions.check_int, value, what, -MOMENT_RANGE, MOMENT_RANGE)


def make_task(id: str, data: bytes | str = b"", *, priority: int = 0, tags: Iterable[str] = (),
              retry: int = 0, max_attempts: int | None = None, time_limit: float | str | None = None,
              delay: float | str | None = None, at: str | int | None = None,
              retry_delay: float | str | None = None, now: int | None = None) -> Task:
    """A new `todo` task, checked as every way in checks it; BadInput if not.

    `data` is bytes (or text, stored as UTF-8); `time_limit`, `delay` and
    `retry_delay` seconds or a duration ("10m"); `at` an ISO 8601 time with
    a timezone (or µs): the task is not assigned before `delay`/`at`; `now`
    the creation time in µs (default: the clock)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadInput(f"task data must be bytes or str, not {type(data).__name__}")
    if isinstance(tags, (str, bytes)):
        raise BadInput(f"tags must be a list of strings, not the string {tags!r}")
    if now is None:
        from riaktq_cli.clock import now_us
        now = now_us()
    due = None
    if delay is not None or at is not None:
        from riaktq_cli.delays import due_time
        if isinstance(at, int) and not isinstance(at, bool):
            at = moment(at, "at")
        due = due_time(seconds(delay, "delay"), at, now)
    try:
        return transitions.new_task(id, data, priority=priority, retry=retry, tags=tags, now=now,
                                    max_attempts=max_attempts, time_limit=seconds(time_limit, "time limit"),
                                    due=due, retry_delay=seconds(retry_delay, "retry delay"))
    except (TransitionError, TypeError) as exc:
        raise BadInput(str(exc)) from None


def created_before(age: float | str | None, now_us: int | None = None) -> int | None:
    """The `iter_ids` bound for "created at least `age` seconds ago": `cat <
    now - age + 1µs`, i.e. `cat <= now - age`. None (no age) means no bound."""
    age = seconds(age, "age")
    if age is None:
        return None
    from riaktq_cli.clock import now_us as clock_now, seconds_to_us
    return (clock_now() if now_us is None else now_us) - seconds_to_us(age) + 1


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise BadInput(f"status {status!r}: expected one of {', '.join(STATUSES)}")


def checked(check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except TransitionError as exc:
        raise BadInput(str(exc)) from None


def task_from_mapping(spec: Mapping[str, Any]) -> Task:
    """One task of `open_many`: the keyword arguments of `open` as a mapping."""
    if not hasattr(spec, "keys"):
        raise BadInput(f"expected a mapping of open()'s arguments, not {type(spec).__name__}")
    unknown = set(spec.keys()) - OPEN_FIELDS
    if unknown:
        raise BadInput(f"unknown field {sorted(unknown)[0]!r}")
    if "id" not in spec:
        raise BadInput('no "id"')
    fields = dict(spec)
    return make_task(fields.pop("id"), fields.pop("data", b""), **fields)
