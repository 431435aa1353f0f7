"""The scheduler: the one process that moves tasks between states.

One iteration (DESIGN §2): read every instance record; commit the results
in their outboxes; assign `todo` tasks to instances with free slots, in
priority order and honouring tags; roll back `nextup` tasks whose instance
is lost or no longer holds them. Iterations never overlap (one loop, one
process) and only the holder of the scheduler lease runs them (lease.py);
every inbox it writes carries the lease epoch and the token of the worker
process it addresses (protocol.py), and it stops writing the moment its
lease is no longer valid.

The scheduler owns its parts and hands each what it needs: the inboxes in
memory (inboxes.py), the due watch (delays.py), the pauses, the tag limits,
the schedules, the forgetter, the sightings, the daily purge and the cancel
step; none reaches into another's state. The process loop (`run`: take the
lease, iterate, let go; Huey's consumer: initialize, one pass at a time,
shutdown) is a SchedulerLoop (scheduler_loop.py) that drives a Scheduler
through its public methods. Operators
steer an iteration through the store: cancellation marks (cancelling.py),
the pause record (pausing.py), delayed tasks and back-off (delays.py); and it
forgets instances long gone (forgetting.py) and purges old finished tasks
once a day (housekeeping.py).
"""

import logging
import os
import socket
import time

from riaktq_cli.scheduler import cancelling, due as delays, housekeeping
from riaktq_cli.core import task as transitions
from riaktq_cli.scheduler.assigning import pick_tasks
from riaktq_cli.core.clock import now_us, seconds_to_us
from riaktq_cli.core.errors import PartialUpdate
from riaktq_cli.scheduler.forgetting import Forgetter
from riaktq_cli.scheduler.inboxes import Inboxes
from riaktq_cli.scheduler.inbox_reads import InboxReads
from riaktq_cli.scheduler.lease import LeaseLost
from riaktq_cli.scheduler.limits import TagLimits
from riaktq_cli.scheduler.pausing import Pauses
from riaktq_cli.scheduler.prefetch import Prefetch
from riaktq_cli.core.records import CRASHED, RETURNED, Entry, run_of, split_handovers
from riaktq_cli.runtime.hints import off as off_hints
from riaktq_cli.scheduler.process import SchedulerLoop
from riaktq_cli.scheduler.sightings import Sightings
from riaktq_cli.scheduler.schedules import Periodic
from riaktq_cli.store.base import INSTANCE

log = logging.getLogger("riaktq")

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_FORGET_AFTER = 86400.0


class Scheduler:
    def __init__(self, store, *, instance_timeout, prefetch, events, owner=None,
                 max_attempts=DEFAULT_MAX_ATTEMPTS, retry_delay=0.0, retry_delay_max=3600.0, keep_finished=None,
                 forget_after=DEFAULT_FORGET_AFTER, schedules=(), hints=None):
        self.store, self.events, self.max_attempts = store, events, max_attempts
        self.instance_timeout, self.timeout_us = instance_timeout, seconds_to_us(instance_timeout)
        self.prefetch = Prefetch(prefetch)
        self.due = delays.DueWatch(store, retry_delay, retry_delay_max)    # delayed tasks, back-off
        self.daily = housekeeping.DailyPurge(store, keep_finished)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.pauses = Pauses(store, self.owner)
        self.forgetter = Forgetter(store, forget_after, self.timeout_us)
        self.sightings = Sightings(store, self.timeout_us)   # a short listing is no loss
        self.inbox_reads = InboxReads(store)   # nor an inbox read that comes back empty
        self._shielded = set()   # names whose tasks this iteration must not roll back
        self._nextup = {}        # this iteration's nextup listing: task id -> assignee
        self.periodic = Periodic(store, schedules)   # [[schedule]]: tasks opened at their slots
        self.limits = TagLimits(store, self.owner)   # concurrency and rate per tag, across instances
        self.lease = None     # set by the loop; iteration() alone (tests) writes epoch 0
        # the only writer of inboxes keeps them in memory, read through inbox_reads
        self.inboxes = Inboxes(store, self.inbox_reads)
        self._tokens = {}     # name -> {token: (task ids it held, when seen)}
        self._taken_over = False  # set by took_over()
        # wake-up hints: the loop listens on them, an iteration sends them to the workers it wrote to
        self.hints = hints if hints is not None else off_hints()

    def run(self, interval, stop, once=False):
        """Hold the lease and iterate every `interval` until `stop` is set
        (SchedulerLoop.run)."""
        return SchedulerLoop(self).run(interval, stop, once)

    def took_over(self):
        """This process has just taken the lease: start a fresh view (other
        schedulers may have written the inboxes), and let the first
        iteration re-emit what the last holder may not have."""
        self.inboxes.reset()
        self._taken_over = True

    # --- one iteration -------------------------------------------------------
    def iteration(self):
        """Run one iteration; return a summary dict of what it did."""
        now = now_us()
        instances, handovers = split_handovers(self.store.list_records(INSTANCE))
        # Read before anything moves: tasks assigned below are held anyway,
        # and a store that remembers tasks (Riak) learns here which ones
        # someone else changed since (rm) before it writes them again.
        nextup = self.store.nextup_states()
        expected = {task_id: assignee for task_id, assignee, _ in nextup}
        self._nextup = expected   # listed nextup: a read of one that finds nothing missed (_commit)
        instances, self._shielded = self.sightings.fill(instances, set(expected.values()), now)
        # An inbox read empty that should exist sits out the iteration (inbox_reads.py)
        seen = instances
        doubted = self.inboxes.load_missing(instances, expected, now)
        instances = {n: r for n, r in instances.items() if n not in doubted}
        self._shielded |= doubted
        inboxes = {name: self.inboxes[name] for name in instances}
        # What each instance certainly has not started, judged before the
        # inboxes change below: losing those runs costs no attempt.
        unstarted = {name: {key[0] for key in inboxes[name].unstarted_runs(record)}
                     for name, record in instances.items()}
        summary = {"commit": 0, "restart": 0, "assign": 0, "rollback": 0}
        held_before = {name: inboxes[name].queue_length(record) for name, record in instances.items()}

        if self._taken_over:
            self._taken_over = False
            self._reemit_lost_ends(seen, now)
            self.periodic.restart(now)
            self.limits.restart()
        self._address(instances)
        finished, busy = self._commit(instances, handovers, summary)
        self.prefetch.observe(time.monotonic(), finished, held_before, busy)
        live = {n: r for n, r in instances.items()
                if r.is_live(now, self.timeout_us) and n not in self.sightings.expired}
        self._prune(instances, live)
        cancelling.withdraw(self.inboxes, instances, live, {i: a for i, a, marked in nextup if marked})
        self.due.release(now, self._update)      # due tasks join the todo order first
        self.pauses.current()   # the pause record: read at most once a second
        self.limits.refresh(expected, now)   # the limits record likewise; in flight from the nextup read
        self._assign(live, summary)
        written = self.inboxes.write(self.lease.epoch if self.lease is not None else 0, self._check_lease,
                                     self.hints.address)
        for name in written:   # look now: new entries, or a cancel (a commit alone can wait for its read)
            inbox = self.inboxes.get(name)
            if name in seen and inbox is not None and (inbox.pending(seen[name]) or inbox.cancel):
                self.hints.send(seen[name].hint)
        self._rollback(instances, live, expected, unstarted, summary)
        self.pauses.confirm()
        self.limits.confirm()
        self.sightings.forget(self.forgetter.sweep(instances, self.inboxes, expected))
        self.daily.step(now, self._check_lease)  # keep_finished: a batch at most
        summary["opened"] = self.periodic.step(now, self._check_lease)
        summary["instances"] = len(live)
        return summary

    def _reemit_lost_ends(self, instances, now):
        """After taking the lease: a run lost with its instance that ended
        its task (failed at max_attempts, or cancelled) has no result that
        the commit step could recognize, and the previous holder may have
        died between writing it and emitting its event. The lost instance's
        record still names that run: emit the event again (events are at
        least once; `(id, run, transition)` tells a repeat)."""
        runs = {}
        for name, record in instances.items():
            if not record.is_live(now, self.timeout_us) and record.current:
                runs[record.current.id] = (name, record.current.run, record.current.inc)
        for task in (self.store.get_tasks(list(runs)) if runs else {}).values():
            name, run, inc = runs[task.id]
            last = task.history[-1] if task.history else None
            if task.status in transitions.FINISHED and (task.run, task.inc) == (run, inc) and last is not None and \
                    last[1] in ("close", "cancel") and last[2] == name and last[3] == run:
                self.events.emit(last[1], task, instance=name)

    def _address(self, instances):
        """Address each inbox to the worker process now holding the name:
        entries meant for an earlier process are withdrawn (it will never
        take them; the rollback below sends their tasks back uncounted)."""
        for name, record in instances.items():
            inbox = self.inboxes[name]
            if inbox.token != record.token:
                inbox.token = record.token
                inbox.entries = []
                self.inboxes.changed(name)

    def _commit(self, instances, handovers, summary):
        """Apply every outbox result of the task's current run (one batch for
        all instances and handovers), then list the results as committed in
        the inboxes and delete the handovers left with nothing to commit."""
        # task id -> [(instance name, result)]: a task rolled back from an
        # instance presumed dead can have results from it and from its new
        # assignee; a handover's results count as its name's.
        fresh = {}
        for name, record in instances.items():
            for result in record.uncommitted(self.inboxes[name]):
                fresh.setdefault(result.id, []).append((name, result))
        for record in handovers.values():
            for result in record.outbox:
                fresh.setdefault(result.id, []).append((record.handover_of, result))

        kinds = {}           # task id -> transition name of the write
        recognized = []      # (task, instance, kind): landed earlier, event maybe not emitted

        def apply(task):
            results = fresh[task.id]
            # the current run of this incarnation (an id opened again starts
            # again at run 1: a run of the removed task must not commit here)
            mine = next((r for name, r in results if name == task.assignee and r.key == run_of(task)), None)
            if task.status == transitions.NEXTUP and mine is not None:
                new, kinds[task.id] = self._apply_result(task, mine)
                return new
            for name, r in results:
                if _landed(task, r):
                    recognized.append((task, name, _kind_of(task, r)))
                    break
            return None  # a result of another run or instance: dropped silently

        read = set()   # ids of the tasks the store found
        written, failed = self._update(list(fresh), _noting(apply, read), "commit") if fresh else ([], [])
        finished, busy = {}, {}   # per instance: results committed, seconds its handler ran for them
        for old, new in written:
            finished[old.assignee] = finished.get(old.assignee, 0) + 1
            busy[old.assignee] = busy.get(old.assignee, 0.0) + (new.laf or 0) / 1e6
            kind = kinds[new.id]
            summary["restart" if kind == "restart" else "rollback" if kind == "rollback" else "commit"] += 1
            self.events.emit(kind, new, instance=old.assignee)
        for task, name, kind in recognized:
            self.events.emit(kind, task, instance=name)
        # A failed write may still have landed: not committed, so the result
        # is tried again next time, and recognized by its run if it landed.
        unsure = _unsure(fresh, failed, read, self._nextup)
        for name, record in instances.items():
            inbox = self.inboxes[name]
            committed = [r.key for r in record.outbox if r.key not in unsure]
            if committed != inbox.committed:
                inbox.committed = committed
                self.inboxes.changed(name)
        self._drop_handovers(handovers, unsure)
        return finished, busy

    def _drop_handovers(self, handovers, unsure):
        """A handover whose process has stopped (or died: silent for the
        instance timeout) and whose results were all applied (or are of no
        current run) has done its job."""
        now = now_us()
        for name, record in handovers.items():
            if not record.is_live(now, self.timeout_us) and not any(r.key in unsure for r in record.outbox):
                self._check_lease()
                self.store.delete_record(INSTANCE, name)
                log.info("committed the handover of %s (%d result(s))", record.handover_of, len(record.outbox))

    def _apply_result(self, task, result):
        """(new task, transition name) for the current run's result."""
        status, out = result.status, result.output
        if status == RETURNED:
            return transitions.rollback(task)
        if status == CRASHED:
            return transitions.rollback(task, counted=True, default_max_attempts=self.max_attempts,
                                        why=out.decode("utf-8", "replace"), sat=result.sat, laf=result.laf)
        if status not in transitions.FINISHED:
            status, out = transitions.FAILED, f"unknown result status {status!r}".encode()
        now = now_us()
        return transitions.close(task, task.assignee, status, out, result.sat, result.laf, now,
                                 self.due.restart_delay_us(task, status, now))

    def _update(self, task_ids, change, step):
        """store.update_tasks, only while the lease is ours; on a partial
        failure keep what was written and go on: the rest is retried by a
        later iteration."""
        self._check_lease()
        try:
            return self.store.update_tasks(task_ids, change), []
        except PartialUpdate as exc:
            log.warning("%s: %s; retrying those next iteration", step, exc)
            return exc.written, exc.failed

    def _prune(self, instances, live):
        """Drop inbox entries the instance has taken; empty the inboxes of
        lost instances (their tasks are rolled back below), but not of one
        shielded (sightings.py): alive until positively gone."""
        for name, record in instances.items():
            inbox = self.inboxes[name]
            keep = inbox.pending(record) if name in live or name in self._shielded else []
            if len(keep) != len(inbox.entries):
                inbox.entries = keep
                self.inboxes.changed(name)

    def _assign(self, live, summary):
        free, idle = {}, set()
        for name, record in live.items():
            held = self.inboxes[name].queue_length(record)
            slots = self.prefetch.depth(name) - held
            if slots > 0:
                free[name] = slots
                if not held:
                    idle.add(name)
        if not free or self.pauses.state.all:
            return
        picks = pick_tasks(self.store, free, {n: self.limits.offered(self.pauses.offered(live[n].tags)) for n in free},
                           self.limits, idle)
        if not picks:
            return

        def assign(task):
            name = picks[task.id]
            if not transitions.ready(task) or not task.matches(live[name].tags):
                return None
            return transitions.assign(task, name)

        written = self._update(list(picks), assign, "assign")[0]
        self.limits.assigned([new for _old, new in written], self._check_lease)
        for _old, new in written:
            inbox = self.inboxes[new.assignee]
            inbox.seq += 1
            inbox.entries.append(Entry.of(inbox.seq, new))
            self.inboxes.changed(new.assignee)
            summary["assign"] += 1
            self.events.emit("assign", new)

    def _holdings(self, instances, live):
        """Task ids each live instance name holds. Two processes under one
        name overwrite each other's record, so one record shows only half of
        what the name holds: what an earlier token of the name held stays
        held until that token has not been seen for the instance timeout,
        or a successor's record says it `replaces` that (dead) token."""
        now = time.monotonic()
        held = {}
        for name, record in instances.items():
            tokens = self._tokens.setdefault(name, {})
            token, replaced = record.token, record.replaces
            tokens[token] = (self.inboxes[name].held_task_ids(record), now)
            if replaced is not None and replaced != token:
                tokens.pop(replaced, None)
            for token in [t for t, (_, seen) in tokens.items() if now - seen > self.instance_timeout]:
                del tokens[token]
            if name in live:
                held[name] = set().union(*(ids for ids, _ in tokens.values()))
        for name in [n for n in self._tokens if n not in instances]:
            del self._tokens[name]
        return held

    def _rollback(self, instances, live, expected, unstarted, summary):
        held = self._holdings(instances, live)
        lost = [task_id for task_id, assignee in expected.items()
                if task_id not in held.get(assignee, ()) and assignee not in self._shielded]
        if not lost:
            return
        kinds = {}

        def rollback(task):
            # Still nextup on the instance we judged lost, and still not held.
            if task.status != transitions.NEXTUP or task.assignee != expected.get(task.id):
                return None
            counted = task.id not in unstarted.get(task.assignee, ())
            new, kinds[task.id] = transitions.rollback(task, counted=counted,
                                                       default_max_attempts=self.max_attempts)
            return new

        for old, new in self._update(lost, rollback, "rollback")[0]:
            summary["rollback" if kinds[new.id] == "rollback" else "commit"] += 1
            self.events.emit(kinds[new.id], new, instance=old.assignee)

    def _check_lease(self):
        if self.lease is not None and not self.lease.valid():
            raise LeaseLost("the scheduler lease is not confirmed; not writing")



def _unsure(fresh, failed, read, nextup):
    """Run keys of the results not to list committed: those of a failed
    write, and those of a task the nextup listing names that the read did
    not find -- a read that missed (a Riak node catching up), not a removed
    task. Listed committed, the worker would drop the result and the task
    be rolled back as lost: it waits for a read that finds the task."""
    missed = [task_id for task_id in fresh if task_id not in read and task_id in nextup]
    return {r.key for task_id in [*failed, *missed] for _, r in fresh[task_id]}


def _noting(change, read):
    """`change`, adding to `read` the id of every task it is called with:
    the tasks the store found."""
    def noted(task):
        read.add(task.id)
        return change(task)
    return noted


def _landed(task, result):
    """True if `result` was already applied to `task` (an earlier write
    whose answer was lost, or a scheduler that died before its event)."""
    return (result.status != RETURNED and run_of(task) == result.key and task.status != transitions.NEXTUP
            and (task.sat, task.laf) == (result.sat, result.laf))


def _kind_of(task, result):
    if result.status == CRASHED:
        return "close" if task.status in transitions.FINISHED else "rollback"
    return "restart" if task.status == transitions.TODO else "close"
