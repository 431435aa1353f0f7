"""Periodic tasks: the `[[schedule]]` tables of the config file, opened by
whichever scheduler holds the lease.

A schedule names its slots: `cron` (a cron line, evaluated by cronsim in
the schedule's IANA `timezone`, with Debian cron's behaviour across DST
changes) or `every` (a duration; slots are the multiples of it since the
Unix epoch, so every process computes the same ones). At each slot the
scheduler opens a task whose id names the slot in UTC,
`nightly-report@2026-12-02T06:00Z`: the store refuses a second task with
that id, so a slot is opened at most once whoever tries, and a scheduler
killed between opening the task and writing down that it did loses
nothing -- the next holder tries again and meets the duplicate.

What was opened is kept per schedule in the record `scheduler/schedule.NAME`
{"covered": µs, "slot": µs, "id": task id, "at": µs}: every slot up to
`covered` has been dealt with (opened, or skipped by `catch_up`). A
scheduler reads these records once, when it takes the lease, then keeps
them in memory (it is their only writer) and writes one only when a slot
came due: an idle schedule costs a comparison per iteration.

Slots that came due while no scheduler ran -- at or before the moment this
holder took the lease -- were missed; `catch_up` says what to do with them:
`last` opens the latest one, `all` opens each (at most BATCH per
iteration), `none` opens none. Slots that come due while this holder runs
are never missed, however late an iteration sees them.
"""

import logging
import os
from datetime import datetime, timezone

from riaktq_cli.errors import ConfigError, DuplicateTask
from riaktq_cli.records import ScheduleSlots
from riaktq_cli.store.base import SCHEDULER

log = logging.getLogger("riaktq")

CATCH_UP = ("last", "all", "none")
KEYS = {"name", "cron", "every", "timezone", "in", "in_file", "tags", "priority", "catch_up"}
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
NAME_MAX = 100
RECORD_PREFIX = "schedule."
BATCH = 100   # tasks one iteration opens for one schedule at most (catch_up = "all" after long downtime)


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
        from riaktq_cli.durations import format_duration
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
    from riaktq_cli.durations import parse_duration
    from riaktq_cli.errors import DurationError
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
    from riaktq_cli.errors import TransitionError
    from riaktq_cli.task_checks import validate_tag
    if not isinstance(tags, list):
        raise ConfigError(f"bad tags in {label}: expected a list of words")
    try:
        return tuple(sorted({validate_tag(t) for t in tags}))
    except TransitionError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def _priority(value, label):
    from riaktq_cli.errors import TransitionError
    from riaktq_cli.task_checks import PRIORITY_MAX, PRIORITY_MIN, check_int
    try:
        return check_int(value, "priority", PRIORITY_MIN, PRIORITY_MAX)
    except TransitionError as exc:
        raise ConfigError(f"{label}: {exc}") from None


# --- the scheduler's part --------------------------------------------------------

class Periodic:
    """Opens the schedules' tasks; one per scheduler process, stepped once
    per iteration by the lease holder."""

    def __init__(self, store, schedules=()):
        self.store, self.schedules = store, list(schedules)
        self._records = None     # name -> ScheduleSlots (or None), read after taking the lease
        self._since = None       # when this holder started: slots at or before it were missed
        self._next_due = {}      # name -> µs of the next slot to look at (None: never again)

    def restart(self, now):
        """This process (again) holds the lease: what another holder did is
        in the store, read it before the next step."""
        self._records, self._since, self._next_due = None, now, {}

    def step(self, now, check_lease=lambda: None):
        """Open the tasks of every slot due at `now`; the number opened."""
        if not self.schedules:
            return 0
        if self._since is None:
            self._since = now
        if self._records is None:
            self._records = {s.name: ScheduleSlots.from_dict(self.store.get_record(SCHEDULER, s.record_name))
                             for s in self.schedules}
        opened = 0
        for schedule in self.schedules:
            due = self._next_due.get(schedule.name, 0)
            if due is not None and due <= now:
                opened += self._step_one(schedule, now, check_lease)
        return opened

    def _step_one(self, schedule, now, check_lease):
        record = self._records.get(schedule.name)
        if record is None:
            # A new schedule starts now: nothing before it was missed. The
            # baseline is written, so a holder that dies before the first
            # slot does not make its successor skip that slot.
            record = ScheduleSlots(now, at=now)
            check_lease()
            self.store.put_record(SCHEDULER, schedule.record_name, record.to_dict())
            self._records[schedule.name] = record
        covered = record.covered
        due, covered_to = self._due(schedule, covered, now)
        if due:
            self._open(schedule, due, now, check_lease)
        if covered_to > covered:
            record = ScheduleSlots(covered_to, due[-1] if due else record.slot,
                                   schedule.task_id(due[-1]) if due else record.id, now)
            check_lease()
            self.store.put_record(SCHEDULER, schedule.record_name, record.to_dict())
            self._records[schedule.name] = record
        self._next_due[schedule.name] = schedule.next_after(covered_to)
        return len(due)

    def _due(self, schedule, covered, now):
        """(slots to open, earliest first; the time every slot is dealt with up to)."""
        if schedule.catch_up == "all":
            due = schedule.slots(covered, now)
            return due, (due[-1] if len(due) == BATCH else now)
        due = []
        missed_upto = min(self._since, now)
        if covered < missed_upto:
            latest = schedule.latest_at_or_before(missed_upto)
            if latest is not None and latest > covered:
                if schedule.catch_up == "last":
                    due.append(latest)
                log.info("schedule %s: slots missed up to %s (catch_up %s)", schedule.name,
                         schedule.task_id(latest), schedule.catch_up)
            covered = missed_upto
        due += schedule.slots(covered, now)
        return due, (due[-1] if len(due) >= BATCH else now)

    def _open(self, schedule, slots, now, check_lease):
        from riaktq_cli.task import new_task
        tasks = [new_task(schedule.task_id(slot), schedule.data, priority=schedule.priority, tags=schedule.tags,
                          now=now) for slot in slots]
        check_lease()
        for task, error in zip(tasks, self.store.create_tasks(tasks)):
            if isinstance(error, DuplicateTask):
                log.info("schedule %s: %s was opened already", schedule.name, task.id)
            elif error is not None:
                raise error   # the record is not advanced: the next iteration tries again
            else:
                log.info("schedule %s: opened %s", schedule.name, task.id)


# --- the operator's view ------------------------------------------------------------

def rows(store, schedules, now):
    """One dict per schedule: what `riaktq schedules` shows."""
    from riaktq_cli.output import utc_time
    records = {s.name: ScheduleSlots.from_dict(store.get_record(SCHEDULER, s.record_name)) or ScheduleSlots(0)
               for s in schedules}
    ids = [r.id for r in records.values() if r.id]
    tasks = store.get_tasks(ids) if ids else {}
    out = []
    for s in schedules:
        record = records[s.name]
        task = tasks.get(record.id)
        upcoming = s.next_after(max(now, record.covered))
        out.append({"name": s.name, "when": s.describe(), "catch_up": s.catch_up,
                    "last_slot": utc_time(record.slot) if record.slot else None,
                    "last_task": record.id,
                    "last_status": task.status if task else ("gone" if record.id else None),
                    "next_slot": utc_time(upcoming) if upcoming is not None else None,
                    "next_task": s.task_id(upcoming) if upcoming is not None else None})
    return out
