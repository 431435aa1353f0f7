"""The scheduler's process loop, in the style of Huey's consumer:
initialize (take the lease, start a fresh view), one pass at a time (wait
for the interval or a change in the store, run one iteration, apply the
error policy), shutdown (release the lease).

Kept apart from scheduler.py, which holds what one iteration does, so that
lease timing, watching and the error policy can be read in one place. The
loop owns its lease and its timing; it drives the Scheduler only through
its public face (store, owner, instance_timeout, prefetch, lease,
took_over(), iteration()).
"""

import logging
import time

from riaktq_cli.runtime import instruments
from riaktq_cli.runtime.hints import GAP as HINT_GAP
from riaktq_cli.store import published as scheduler_settings
from riaktq_cli.core.errors import StoreError, StoreUnavailable
from riaktq_cli.scheduler.lease import TTL_SHARE, Lease, LeaseLost
from riaktq_cli.runtime.outage import Outage
from riaktq_cli.core.records import Inbox, Instance
from riaktq_cli.store.base import INBOX, INSTANCE

log = logging.getLogger("riaktq")

# How often the scheduler looks for changes where the store can tell cheaply:
# every 10 ms while work flows, every 50 ms once nothing changed for a while
# (an idle scheduler then costs well under 1% of a core).
WATCH_TICK = 0.01
WATCH_TICK_IDLE = 0.05
IDLE_AFTER = 2.0
# Iterations run early for wake-up hints may take HINT_DUTY of a core at
# most (CPU time: waiting for the store costs nothing), with bursts of up to
# HINT_BURST seconds: hints, forged ones included, cannot keep the scheduler
# busy, and a quiet queue answers one at once.
HINT_DUTY = 0.5
HINT_BURST = 0.25


class HintBudget:
    """How soon a hinted iteration may start: a budget of CPU seconds that
    refills at HINT_DUTY per second up to HINT_BURST, and that each hinted
    iteration spends by the CPU time it used; never sooner than HINT_GAP
    after the last iteration."""

    def __init__(self):
        self._left, self._at = HINT_BURST, time.monotonic()

    def _refilled(self, now):
        return min(HINT_BURST, self._left + (now - self._at) * HINT_DUTY)

    def due(self, now, last_end):
        left = self._refilled(now)
        return max(last_end + HINT_GAP, now if left > 0 else now - left / HINT_DUTY)

    def spend(self, now, seconds):
        self._left, self._at = self._refilled(now) - seconds, now


class SchedulerLoop:
    """One scheduler process: takes the lease for `scheduler` (a Scheduler)
    and runs its iterations."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.store = scheduler.store
        self._lapsed_since = None   # monotonic time the lease stopped being confirmed, while it is not
        self._standby_for = None    # the holder we last said we stand by for
        self._next_run = 0.0
        self._seen_version = None
        self._last_work = 0.0       # monotonic time of the last iteration that moved a task
        self._hinted = False        # a wake-up hint came since the last iteration started
        self._nudge = None          # ends the loop's wait early (StopFlag.nudge), once running
        self._last_end = 0.0        # monotonic time the last iteration ended
        self._hint_budget = HintBudget()

    @property
    def lease(self):
        return self.scheduler.lease

    def run(self, interval, stop, once=False):
        """Hold the lease and iterate every `interval` until `stop` is set.

        The lease lasts half the instance timeout and is renewed by its own
        thread four times per lease period, so a standby takes over within
        the instance timeout of this process's death, and a slow iteration
        never lets it lapse.

        Where the store can tell cheaply that another process wrote to it
        (SQLite's data_version), an iteration also runs as soon as something
        changed -- a task opened, a result in an outbox -- at most every
        WATCH_TICK; `interval` is then the longest wait, not the only one.
        Elsewhere (Riak) a wake-up hint does the same (runtime/hints.py).
        """
        scheduler = self.scheduler
        self._nudge = getattr(stop, "nudge", None)
        if not once and scheduler.hints.listen(self._on_hint):
            log.info("taking wake-up hints at %s", scheduler.hints.address)
        scheduler.lease = Lease(self.store, scheduler.owner, ttl=scheduler.instance_timeout * TTL_SHARE,
                                floor=self.epoch_floor)
        outage = Outage("scheduler")
        self._lapsed_since = None
        try:
            while not stop.is_set():
                if not self.lease.held and not self.take_lease(outage, stop, once, interval):
                    if once:
                        return False
                    continue
                if not self._pass(interval, stop, outage, once):
                    return True
        finally:
            self.lease.release()
            scheduler.hints.close()
        return True

    def _on_hint(self):
        """From the hints thread: run the next iteration now (the pass loop
        spaces hinted iterations, see _hint_due). A standby is not woken: it
        has nothing to look at."""
        self._hinted = True
        lease = self.scheduler.lease
        if self._nudge is not None and lease is not None and lease.held:
            self._nudge()

    def epoch_floor(self):
        """The highest epoch the workers' records and the inboxes show: a
        takeover counts from it too, so a lease document that was deleted
        cannot make epochs start again below what the workers have seen."""
        epochs = [Instance.from_dict(doc, name).epoch for name, doc in self.store.list_records(INSTANCE).items()]
        epochs += [Inbox.from_dict(doc).epoch for doc in self.store.list_records(INBOX).values()]
        return max(epochs, default=0)

    def take_lease(self, outage, stop, once, interval):
        """One attempt at the lease; on success start a fresh view."""
        try:
            held = self.lease.attempt()
            outage.ok()
        except StoreError as exc:
            outage.failed(exc)
            stop.wait(self.lease.tick)
            return False
        if not held:
            holder = self.lease.holder["owner"] if self.lease.holder else "?"
            if self.lease.holder is None and self.lease.shortfall:
                pass   # our own lease ran out while we confirmed it: no holder to stand
                # by for; the lease said why (once), and we try again
            elif self._standby_for != holder:
                log.info("standing by: scheduler lease held by %s", holder)
                self._standby_for = holder
            if not once:
                stop.wait(self.lease.tick)
            return False
        scheduler = self.scheduler
        log.info("scheduler %s holds the lease (epoch %d)", scheduler.owner, self.lease.epoch)
        self._standby_for = self._lapsed_since = None
        scheduler_settings.publish(self.store, scheduler.owner, scheduler.timeout_us, interval,
                                   scheduler.prefetch.fixed or "auto", hint=scheduler.hints.address)
        scheduler.took_over()
        self._next_run = time.monotonic()
        self._seen_version = None
        self.lease.keep_renewed()
        return True

    def _pass(self, interval, stop, outage, once):
        """Wait for the next iteration and run it; False when `once` is done."""
        watch = not once and self._data_version() is not None
        while not stop.is_set() and self.lease.held:
            now = time.monotonic()
            changed = watch and self._data_version() != self._seen_version
            hinted_at = self._hint_budget.due(now, self._last_end) if self._hinted else None
            if changed or now >= self._next_run or (hinted_at is not None and now >= hinted_at):
                break
            wake = self._next_run if hinted_at is None else min(self._next_run, hinted_at)
            if watch:
                # idle: no iteration moved anything lately (heartbeats change
                # the store too, but they are no reason to look every 10 ms)
                idle = now - self._last_work > IDLE_AFTER
                wake = min(wake, now + (WATCH_TICK_IDLE if idle else WATCH_TICK))
            stop.wait(min(max(0.0, wake - now), self.lease.tick))
        if stop.is_set() or not self.lease.held:
            return True
        started, cpu = time.monotonic(), time.process_time()
        early = self._hinted and started < self._next_run   # run for a hint, before its time
        self._hinted = False   # a hint from here on asks for one more look
        self._seen_version = self._data_version() if watch else None
        try:
            summary = self.scheduler.iteration()
            outage.ok()
        except LeaseLost as exc:
            # A slow renewal: the inboxes stay in memory and are written once
            # the lease is confirmed (dropping them would roll back, counted,
            # what this iteration assigned). Lost to another: `held` is false.
            # Said once per lapse (a store refusing writes lasts), not per try.
            if self._lapsed_since is None:
                self._lapsed_since = time.monotonic()
                log.warning("%s", exc)
            else:
                log.debug("still: %s", exc)
            self._next_run = started + min(interval, self.lease.tick)
            return True
        except StoreError as exc:
            # Unavailable, or a record it cannot read: say so (once) and try
            # again; a dead scheduler stops the queue.
            outage.failed(exc, "store unavailable" if isinstance(exc, StoreUnavailable) else "iteration failed")
            self._next_run = started + min(interval, self.lease.tick)
            return True
        if self._lapsed_since is not None and self.lease.valid():   # an iteration that wrote nothing proves nothing
            log.warning("scheduler lease confirmed again after %.1fs; writing", time.monotonic() - self._lapsed_since)
            self._lapsed_since = None
        self._last_end = time.monotonic()
        took = self._last_end - started
        if early:
            self._hint_budget.spend(self._last_end, time.process_time() - cpu)
        instruments.observe_iteration(took)
        if any(summary[k] for k in ("commit", "restart", "assign", "rollback")):
            self._last_work = started
            log.debug("iteration %.1fms %s", took * 1000, summary)
        self._next_run = started + interval
        return not once

    def _data_version(self):
        try:
            return self.store.data_version()
        except StoreError:
            return None
