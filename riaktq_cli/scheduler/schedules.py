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

from riaktq_cli.config.schedules import BATCH
from riaktq_cli.core.errors import DuplicateTask
from riaktq_cli.core.records import ScheduleSlots
from riaktq_cli.store.base import SCHEDULER

log = logging.getLogger("riaktq")



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
        from riaktq_cli.core.task import new_task
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
    from riaktq_cli.core.output import utc_time
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
