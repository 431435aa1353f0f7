"""The scheduler: the one process that moves tasks between states.

One iteration (DESIGN §2): read every instance record; commit the results
in their outboxes; assign `todo` tasks to instances with free slots, in
priority order and honouring tags; roll back `nextup` tasks whose instance
is lost or no longer holds them. Iterations never overlap (one loop, one
process) and only the holder of the scheduler lease runs them.
"""

import logging
import os
import socket
import threading
import time

from riaktq_cli import metrics, protocol, scheduler_settings, task as transitions
from riaktq_cli.clock import now_us, seconds_to_us
from riaktq_cli.errors import PartialUpdate, StoreError, StoreUnavailable
from riaktq_cli.store.base import INBOX, INSTANCE

log = logging.getLogger("riaktq")

# How many todo tasks one iteration looks at beyond the free slots, so that
# tasks no live instance can take (tags) do not stall the ones behind them.
SCAN_FACTOR = 4
SCAN_MIN = 100
# How often the scheduler looks for changes where the store can tell cheaply.
WATCH_TICK = 0.01


class Scheduler:
    def __init__(self, store, *, instance_timeout, prefetch, events, owner=None):
        self.store = store
        self.timeout_us = seconds_to_us(instance_timeout)
        self.prefetch = prefetch
        self.events = events
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        # The scheduler is the only writer of inboxes: it keeps them in
        # memory and reads them from the store only when it takes the lease.
        self._inboxes = {}
        # Result keys whose close write failed in a way that may have landed.
        self._unconfirmed = set()

    # --- one iteration -------------------------------------------------------
    def iteration(self):
        """Run one iteration; return a summary dict of what it did."""
        now = now_us()
        instances = self.store.list_records(INSTANCE)
        for name in instances:
            if name not in self._inboxes:
                self._inboxes[name] = self.store.get_record(INBOX, name) or protocol.empty_inbox()
        dirty = set()
        summary = {"commit": 0, "restart": 0, "assign": 0, "rollback": 0}

        self._commit(instances, dirty, summary)
        live = {n: r for n, r in instances.items() if protocol.is_live(r, now, self.timeout_us)}
        self._prune(instances, live, dirty)
        self._assign(live, dirty, summary)
        for name in dirty:
            self.store.put_record(INBOX, name, self._inboxes[name])
        self._rollback(instances, live, summary)
        summary["instances"] = len(live)
        return summary

    def _commit(self, instances, dirty, summary):
        """Close every outbox result (one batch for all instances), then
        list the results as committed in each instance's inbox."""
        # task id -> {instance: result}: a task rolled back from an instance
        # presumed dead can have results from it and from its new assignee.
        fresh = {}
        for name, record in instances.items():
            inbox = self._inboxes[name]
            done = {tuple(k) for k in inbox["committed"]}
            for result in record.get("outbox", []):
                if protocol.result_key(result) not in done:
                    fresh.setdefault(result["id"], {})[name] = result

        recognized = []  # (task, instance, result): an earlier, unconfirmed close that landed

        def close(task):
            for name, r in fresh[task.id].items():
                if protocol.result_key(r) in self._unconfirmed and (task.sat, task.laf) == (r["sat"], r["laf"]):
                    recognized.append((task, name, r))
                    return None
            r = fresh[task.id].get(task.assignee)
            if r is None or task.status != transitions.NEXTUP:
                return None  # not the assignee's result: dropped silently
            return transitions.close(task, task.assignee, r["status"], protocol.result_output(r),
                                     r["sat"], r["laf"])[0]

        written, failed = self._update(list(fresh), close, "commit") if fresh else ([], [])
        closed = [(new, old.assignee) for old, new in written] + [(t, n) for t, n, _ in recognized]
        for new, name in closed:
            kind = "restart" if new.status == transitions.TODO else "close"
            summary["commit" if kind == "close" else "restart"] += 1
            self.events.emit(kind, new, instance=name)
        # A failed write may still have landed (a timeout): not committed, so
        # the result is tried again, and recognized by its sat/laf if it did.
        unsure = {protocol.result_key(r) for task_id in failed for r in fresh[task_id].values()}
        self._unconfirmed = (self._unconfirmed | unsure) - {protocol.result_key(r) for _, _, r in recognized}
        outboxes = set()
        for name, record in instances.items():
            inbox = self._inboxes[name]
            keys = [protocol.result_key(r) for r in record.get("outbox", [])]
            outboxes.update(keys)
            committed = [list(k) for k in keys if k not in unsure]
            if committed != inbox["committed"]:
                inbox["committed"] = committed
                dirty.add(name)
        self._unconfirmed &= outboxes  # forget what no outbox holds any more

    def _update(self, task_ids, change, step):
        """store.update_tasks; on a partial failure keep what was written
        and go on: the rest is retried by a later iteration."""
        try:
            return self.store.update_tasks(task_ids, change), []
        except PartialUpdate as exc:
            log.warning("%s: %s; retrying those next iteration", step, exc)
            return exc.written, exc.failed

    def _prune(self, instances, live, dirty):
        """Drop inbox entries the instance has taken; empty the inboxes of
        lost instances (their tasks are rolled back below)."""
        for name, record in instances.items():
            inbox = self._inboxes[name]
            keep = protocol.pending_entries(inbox, record) if name in live else []
            if len(keep) != len(inbox["entries"]):
                inbox["entries"] = keep
                dirty.add(name)

    def _assign(self, live, dirty, summary):
        free = {}
        for name, record in live.items():
            slots = self.prefetch - protocol.queue_length(self._inboxes[name], record)
            if slots > 0:
                free[name] = slots
        if not free:
            return
        slots = sum(free.values())
        budget = max(SCAN_MIN, SCAN_FACTOR * slots)
        picks = {}
        # Pages as large as the free slots: on Riak each listed task is a GET,
        # so one free slot should cost one task read, not a hundred.
        for task in self.store.iter_todo(page_size=min(slots, 500)):
            budget -= 1
            candidates = [n for n in free if task.matches(live[n].get("tags", []))]
            if candidates:
                # Fill the instance with the most free slots first, so work
                # spreads over instances instead of piling onto one.
                name = max(candidates, key=lambda n: (free[n], n))
                picks[task.id] = name
                free[name] -= 1
                if free[name] == 0:
                    del free[name]
            if not free or budget <= 0:
                break
        if not picks:
            return

        def assign(task):
            name = picks[task.id]
            if task.status != transitions.TODO or not task.matches(live[name].get("tags", [])):
                return None
            return transitions.assign(task, name)

        for _old, new in self._update(list(picks), assign, "assign")[0]:
            inbox = self._inboxes[new.assignee]
            inbox["seq"] += 1
            inbox["entries"].append(protocol.inbox_entry(inbox["seq"], new))
            dirty.add(new.assignee)
            summary["assign"] += 1
            self.events.emit("assign", new)

    def _rollback(self, instances, live, summary):
        expected = dict(self.store.nextup_assignees())
        held = {name: protocol.held_task_ids(self._inboxes[name], record)
                for name, record in live.items()}
        lost = [task_id for task_id, assignee in expected.items()
                if task_id not in held.get(assignee, ())]
        if not lost:
            return

        def rollback(task):
            # Still nextup on the instance we judged lost, and still not held.
            if task.status != transitions.NEXTUP or task.assignee != expected.get(task.id):
                return None
            return transitions.rollback(task)

        for old, new in self._update(lost, rollback, "rollback")[0]:
            summary["rollback"] += 1
            self.events.emit("rollback", new, instance=old.assignee)

    # --- the loop ------------------------------------------------------------
    def run(self, interval, stop=None, once=False):
        """Hold the lease and iterate every `interval` until `stop` is set.

        The lease lasts half the instance timeout and is renewed four times
        per lease period, also between iterations, so a standby takes over
        within the instance timeout of this process's death.

        Where the store can tell cheaply that another process wrote to it
        (SQLite's data_version), an iteration also runs as soon as something
        changed -- a task opened, a result in an outbox -- at most every
        WATCH_TICK; `interval` is then the longest wait, not the only one.
        """
        stop = stop or threading.Event()
        lease_ttl = self.timeout_us // 2
        lease_tick = max(0.05, lease_ttl / 4 / 1e6)
        watch = not once and self._data_version() is not None
        holding = standby_logged = False
        next_run = next_lease = time.monotonic()
        seen_version = None
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_lease:
                    next_lease = now + lease_tick
                    try:
                        held, lease = self.store.acquire_lease(self.owner, lease_ttl, now_us())
                    except StoreError as exc:
                        log.warning("store unavailable, retrying: %s", exc)
                        holding = False
                        stop.wait(lease_tick)
                        continue
                    if not held:
                        if holding or not standby_logged:
                            log.info("standing by: scheduler lease held by %s", lease["owner"])
                            standby_logged = True
                        holding = False
                        if once:
                            return False
                    elif not holding:
                        log.info("scheduler %s holds the lease", self.owner)
                        scheduler_settings.publish(self.store, self.owner, self.timeout_us, interval, self.prefetch)
                        self._inboxes.clear()  # another scheduler may have written them
                        holding, standby_logged = True, False
                        next_run = now
                if holding:
                    due = now >= next_run
                    if not due and watch:
                        due = self._data_version() != seen_version
                    if due:
                        started = time.monotonic()
                        seen_version = self._data_version() if watch else None
                        try:
                            summary = self.iteration()
                        except StoreError as exc:
                            # Unavailable, or a record it cannot read: say so
                            # and try again; a dead scheduler stops the queue.
                            what = "store unavailable" if isinstance(exc, StoreUnavailable) else "iteration failed"
                            log.warning("%s, retrying: %s", what, exc)
                            self._inboxes.clear()
                            next_run = started + min(interval, lease_tick)
                            stop.wait(min(interval, lease_tick))
                            continue
                        metrics.observe_iteration(time.monotonic() - started)
                        if any(summary[k] for k in ("commit", "restart", "assign", "rollback")):
                            log.debug("iteration %.1fms %s", (time.monotonic() - started) * 1000, summary)
                        next_run = started + interval
                        if once:
                            return True
                wake = next_lease if not holding else min(next_lease, next_run)
                if holding and watch:
                    wake = min(wake, time.monotonic() + WATCH_TICK)
                stop.wait(max(0.0, wake - time.monotonic()))
        finally:
            if holding:
                try:
                    self.store.release_lease(self.owner)
                except StoreError:
                    pass
        return True

    def _data_version(self):
        try:
            return self.store.data_version()
        except StoreError:
            return None
