"""The `[[schedule]]` tables of the config file, checked: what each
schedule is (its name, its slots -- a cron line evaluated by cronsim in an
IANA timezone, or `every` a duration --, the task it opens, `catch_up`),
and the id of the task for a slot. Checked at start by the scheduler and
`riaktq schedules` (one line, exit 2, for a bad table); parsed only when
asked for, so `riaktq open` never pays for the cron parser.

scheduler/schedules.py opens the tasks at their slots.
"""

import logging
import os
from datetime import datetime, timezone

from riaktq_cli.core.errors import ConfigError

log = logging.getLogger("riaktq")

RECORD_PREFIX = "schedule."   # the store record scheduler/schedule.NAME keeps what was opened
BATCH = 100   # tasks one iteration opens for one schedule at most (catch_up = "all" after long downtime)

CATCH_UP = ("last", "all", "none")
KEYS = {"name", "cron", "every", "timezone", "in", "in_file", "tags", "priority", "catch_up"}
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
NAME_MAX = 100


class Schedule:
    """One checked `[[schedule]]` table."""

    def __init__(self, name, *, cron=None, every=None, tz_name="UTC", data=b"", tags=(), priority=0,
                 catch_up="last"):
        from zoneinfo import ZoneInfo
        self.name, self.cron, self.every, self.tz_name = name, cron, every, tz_name
        self.tz = ZoneInfo(tz_name)
        self.data, self.tags, self.priority, self.catch_up = data, tuple(tags), priority, catch_up
        self._every_us = None if every is None else int(round(every * 1_000_000))
        # ids show seconds where a slot can fall within a minute, so that
        # one schedule's ids sort in slot order
        self._seconds = (every is not None and every % 60 != 0) or (cron is not None and len(cron.split()) == 6)

    @property
    def record_name(self):
        return RECORD_PREFIX + self.name

    def describe(self):
        if self.cron is not None:
            return f"cron {self.cron} ({self.tz_name})"
        from riaktq_cli.core.durations import format_duration
        return f"every {format_duration(self.every)}"

    def task_id(self, slot_us):
        """`name@2026-12-02T06:00Z`; `name@2026-12-02T06:00:02Z` for a
        schedule whose slots can fall within a minute."""
        moment = datetime.fromtimestamp(slot_us / 1e6, timezone.utc)
        return f"{self.name}@{moment.strftime('%Y-%m-%dT%H:%M:%SZ' if self._seconds else '%Y-%m-%dT%H:%MZ')}"

    # --- slots ---------------------------------------------------------------
    def next_after(self, t_us):
        """The first slot strictly after `t_us`, or None (a cron line that never matches again)."""
        if self._every_us is not None:
            return (t_us // self._every_us + 1) * self._every_us
        return _first(self._cron_iter(t_us, reverse=False))

    def latest_at_or_before(self, t_us):
        """The last slot at or before `t_us`, or None."""
        if self._every_us is not None:
            return t_us // self._every_us * self._every_us
        # cronsim's reverse iteration starts below a whole second; from one
        # microsecond past `t_us` it may return `t_us` itself.
        return _first(self._cron_iter(t_us + (0 if t_us % 1_000_000 else 1), reverse=True))

    def slots(self, after_us, upto_us, limit=BATCH):
        """Slots s with after_us < s <= upto_us, earliest first, at most `limit`."""
        found = []
        slot = self.next_after(after_us)
        while slot is not None and slot <= upto_us and len(found) < limit:
            found.append(slot)
            slot = self.next_after(slot)
        return found

    def _cron_iter(self, t_us, reverse):
        from cronsim import CronSim
        moment = datetime.fromtimestamp(t_us // 1_000_000, self.tz).replace(microsecond=t_us % 1_000_000)
        return (round(dt.timestamp() * 1_000_000) for dt in CronSim(self.cron, moment, reverse=reverse))


def _first(iterator):
    try:
        return next(iterator)
    except StopIteration:
        return None


# --- the config tables --------------------------------------------------------

def parse(tables, config_path=None):
    """[Schedule] from the `[[schedule]]` tables; ConfigError (one line) for
    an unknown key, a malformed cron line, an unknown timezone, a duplicate
    name, both or neither of cron/every, a bad catch_up, tags or priority."""
    where = f"config file {config_path}: " if config_path else "config: "
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{where}[[schedule]] must be an array of tables")
    checked, seen = [], set()
    for n, table in enumerate(tables, 1):
        try:
            schedule = _one(table, n, config_path)
        except ConfigError as exc:
            raise ConfigError(where + str(exc)) from None
        if schedule.name in seen:
            raise ConfigError(f"{where}[[schedule]] name {schedule.name!r} appears twice")
        seen.add(schedule.name)
        checked.append(schedule)
    return checked


def _one(table, n, config_path):
    unknown = set(table) - KEYS
    name = table.get("name")
    label = f"[[schedule]] {name!r}" if isinstance(name, str) else f"[[schedule]] #{n}"
    if unknown:
        raise ConfigError(f"unknown key '{sorted(unknown)[0]}' in {label} (known: {', '.join(sorted(KEYS))})")
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or not set(name) <= NAME_CHARS:
        raise ConfigError(f"{label} needs a name of letters, digits, '.', '_' or '-' (at most {NAME_MAX})")
    cron, every = table.get("cron"), table.get("every")
    if (cron is None) == (every is None):
        raise ConfigError(f"{label} needs exactly one of cron and every")
    tz_name = table.get("timezone", "UTC")
    tz_ok = isinstance(tz_name, str) and tz_name and _known_zone(tz_name)
    if not tz_ok:
        raise ConfigError(f"{label}: unknown timezone {tz_name!r} (an IANA name such as 'Europe/Paris' or 'UTC')")
    if every is not None:
        every = _every(every, label)
    else:
        _check_cron(cron, label)
    catch_up = table.get("catch_up", "last")
    if catch_up not in CATCH_UP:
        raise ConfigError(f"bad catch_up {catch_up!r} in {label}: expected one of {', '.join(CATCH_UP)}")
    return Schedule(name, cron=cron, every=every, tz_name=tz_name, data=_input(table, label, config_path),
                    tags=_tags(table.get("tags", []), label), priority=_priority(table.get("priority", 0), label),
                    catch_up=catch_up)


def _known_zone(tz_name):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _every(value, label):
    from riaktq_cli.core.durations import parse_duration
    from riaktq_cli.core.errors import DurationError
    try:
        seconds = parse_duration(value, f"every in {label}")
    except DurationError as exc:
        raise ConfigError(str(exc)) from None
    if seconds < 1:
        raise ConfigError(f"bad every {value!r} in {label}: at least 1s")
    return seconds


def _check_cron(cron, label):
    from cronsim import CronSim, CronSimError
    if not isinstance(cron, str):
        raise ConfigError(f"bad cron {cron!r} in {label}: expected a cron line such as '0 6 * * *'")
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CronSimError as exc:
        raise ConfigError(f"bad cron {cron!r} in {label}: {exc}") from None


def _input(table, label, config_path):
    if "in" in table and "in_file" in table:
        raise ConfigError(f"{label} has both in and in_file; keep one")
    if "in_file" in table:
        path = table["in_file"]
        if not isinstance(path, str) or not path:
            raise ConfigError(f"bad in_file {path!r} in {label}")
        path = os.path.join(os.path.dirname(config_path) if config_path else os.getcwd(), os.path.expanduser(path))
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise ConfigError(f"in_file {path} of {label}: cannot read it ({exc.strerror or exc})") from None
    data = table.get("in", "")
    if not isinstance(data, str):
        raise ConfigError(f"bad in {data!r} in {label}: expected a string")
    return data.encode("utf-8")


def _tags(tags, label):
    from riaktq_cli.core.errors import TransitionError
    from riaktq_cli.core.task_checks import validate_tag
    if not isinstance(tags, list):
        raise ConfigError(f"bad tags in {label}: expected a list of words")
    try:
        return tuple(sorted({validate_tag(t) for t in tags}))
    except TransitionError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def _priority(value, label):
    from riaktq_cli.core.errors import TransitionError
    from riaktq_cli.core.task_checks import PRIORITY_MAX, PRIORITY_MIN, check_int
    try:
        return check_int(value, "priority", PRIORITY_MIN, PRIORITY_MAX)
    except TransitionError as exc:
        raise ConfigError(f"{label}: {exc}") from None
