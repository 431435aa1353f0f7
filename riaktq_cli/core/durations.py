"""Durations as operators write them: `250ms`, `5s`, `1m`, `2h`, `1d`.

One parser for the config file and the command line, so that both accept
and reject exactly the same spellings.
"""

from riaktq_cli.core.errors import DurationError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Longer than any queue runs, short enough that µs arithmetic and a date
# "that long ago" stay in range (`report --age 99999999999d` is a typo).
MAX_SECONDS = 100 * 366 * 86400.0


def parse_duration(text, what="duration"):
    """Return seconds (float) for a duration string, or raise DurationError.

    A bare number is refused on purpose: `5` could mean seconds or minutes,
    and a queue that guesses wrong waits a minute instead of a second.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise DurationError(f"bad {what} {text!r}: write it with a unit, e.g. '{text}s' (units: ms, s, m, h, d)")
    # Parsed by hand, not with `re`: every command validates the config's
    # durations, and importing re costs `riaktq open` a tenth of its start-up.
    body = str(text).strip()
    unit = "ms" if body.endswith("ms") else body[-1:]
    number = body[: len(body) - len(unit)].strip()
    whole, _, fraction = number.partition(".")
    if unit not in _UNITS or not whole.isdigit() or not whole.isascii() or \
            (fraction and not (fraction.isdigit() and fraction.isascii())) or number.endswith("."):
        raise DurationError(f"bad {what} {text!r}: expected a number and a unit, e.g. 250ms, 5s, 1m, 2h, 1d")
    seconds = float(number) * _UNITS[unit]
    if seconds > MAX_SECONDS:
        raise DurationError(f"bad {what} {text!r}: longer than 100 years")
    return seconds


def format_duration(seconds):
    """A short human rendering (`850ms`, `12.5s`, `3m 20s`, `2h 5m`, `1d 3h`)."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
