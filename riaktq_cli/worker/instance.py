"""A worker instance: its inbox in, its instance record out.

The loop is the shape of Huey's consumer: `initialize` (handler process up,
name claimed, predecessor taken over, first record written), then `step`
until the worker is done, then `shutdown` (the last record, status
`stopped`). The main thread does all store I/O and nothing else; tasks run
in the handler process, driven by the runner thread (worker/runner.py).

A step: check the runner is alive and not stuck; on a stop request, tell
the runner (hand back the queue, grace for the task at hand); move finished
results to the outbox; read the inbox when due (every `poll`, at once when
the runner has drained, or when SQLite says someone wrote); write the
record when due (every `heartbeat`, and while results come in at most every
FLUSH_INTERVAL, so a stream of fast tasks costs one write per batch). Then
sleep in select() until the next thing is due or the runner or a signal
wakes it -- an idle worker sleeps, it does not spin.
"""

import logging
import os
import secrets
import select
import socket
import threading
import time

from riaktq_cli.core import protocol
from riaktq_cli.core.clock import now_us, seconds_to_us
from riaktq_cli.core.errors import StoreError
from riaktq_cli.runtime.hints import off as off_hints
from riaktq_cli.runtime.outage import Outage
from riaktq_cli.core.records import Inbox, Instance, Result
from riaktq_cli.runtime.signals import parent_alive, pid_alive
from riaktq_cli.store.base import INBOX, INSTANCE
from riaktq_cli.worker import claim
from riaktq_cli.worker.output import LostLines
from riaktq_cli.worker.runner import Runner, RunnerFailed
from riaktq_cli.worker.worker_state import InboxWatch, NameWatch, RecordSchedule, Stopping

log = logging.getLogger("riaktq")

# Finished results are written at most this often while more tasks are
# queued, so a burst of fast tasks costs one write per batch, not per task.
FLUSH_INTERVAL = 0.05
# Where the store can tell cheaply that someone wrote (SQLite), the worker
# looks this often and reads its inbox at once instead of waiting for `poll`:
# every WATCH_TICK while work came in the last IDLE_AFTER seconds, then every
# IDLE_WATCH_TICK, so that an idle worker costs well under 1% of a core.
WATCH_TICK = 0.01
IDLE_WATCH_TICK = 0.05
IDLE_AFTER = 2.0
# With this many entries queued or at hand, the inbox is read once per heartbeat.
BUSY_BACKLOG = 2
# A runner thread that shows no sign of life for this long is stuck.
WEDGED_AFTER = 30.0


class Worker:
    def __init__(self, store, name, handler, *, tags=(), heartbeat=2.0, poll=0.5, time_limit=None,
                 shutdown_grace=30.0, instance_timeout=30.0, supervisor_pid=None, announce=(), hints=None):
        """`handler` names the handler: anything with `.name` (the spec given
        to --handler) and `.options` (a dict for its init). `announce`: log
        lines for once it is up (the store line): a refusal stays one line.
        `hints`: its wake-up hints (runtime/hints.py), or None for none."""
        self.announce = tuple(announce)
        self.store = store
        self.name = name
        self.handler_name = handler.name
        self.tags = sorted(set(tags))
        self.heartbeat = heartbeat
        self.poll = poll
        self.shutdown_grace = shutdown_grace
        self.timeout_us = seconds_to_us(instance_timeout)   # the scheduler's, once read
        self._own_timeout_us = self.timeout_us
        self.supervisor_pid = supervisor_pid
        self.token = secrets.token_hex(8)
        self.replaces = None      # the token of a dead predecessor under this name
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.outbox = []
        self.taken = 0
        self.epoch = 0          # the highest inbox epoch seen (fencing)
        self._started = now_us()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.runner = Runner(name, handler.name, getattr(handler, "options", None) or {},
                             time_limit=time_limit, wake_main=self._wake)
        self.outage = Outage(f"worker {name}")
        self._retry_at = 0.0                # after a store error: nothing before this
        self._record = RecordSchedule()     # when the instance record is due
        self._inbox = InboxWatch()          # when the inbox was read, and what to watch
        self._stopping = Stopping()         # asked to stop, at once, or leaving the name
        self._name = NameWatch()            # another process seen under this name
        self._lost = LostLines(name)        # log lines its stderr could not take
        self.hints = hints if hints is not None else off_hints()

    # --- the loop ---------------------------------------------------------------
    def run(self, stop=None):
        """Work until `stop` is set (a StopFlag or threading.Event), then hand
        back the queue, let the task at hand finish within the grace period,
        and write the outbox with status `stopped`.

        Raises HandlerError (bad handler), NameTaken (another live process
        holds the name) or RunnerFailed (the handler process cannot be kept
        running): the caller exits non-zero."""
        stop = stop if stop is not None else threading.Event()
        if hasattr(stop, "add_wakeup_fd"):
            stop.add_wakeup_fd(self._wake_w)
        try:
            if not self.initialize(stop):
                self.runner.close()
                self.hints.close()
                return
            while self.step(stop):
                self.wait(stop)
        except BaseException:
            self.runner.close()
            self.hints.close()
            raise
        self.shutdown()
        self.hints.close()
        if self._stopping.leaving is not None:
            raise self._stopping.leaving

    def initialize(self, stop):
        """Handler process up, name claimed, first record written; False if
        a stop came first."""
        if not self.runner.start_child(cancelled=stop.is_set):
            return False
        self.tags = sorted(set(self.tags) | set(self.runner.tags))
        self.hints.listen(self._on_hint)   # before the first record, which publishes the address
        while not stop.is_set():
            try:
                self._claim()
                self._write()
                self._inbox.watch = self.store.data_version() is not None
            except StoreError as exc:
                self.outage.failed(exc)
                self._sleep(min(self.poll, self.heartbeat))
                continue
            self.outage.ok()
            for line in self.announce:
                log.info("%s", line)
            log.info("worker %s up (handler %s, tags %s, pid %d%s)", self.name, self.handler_name,
                     ",".join(self.tags) or "-", self.pid,
                     f", wake-up hints at {self.hints.address}" if self.hints.listening else "")
            return True
        return False

    def step(self, stop):
        """One pass; False once the worker has stopped."""
        self._check_health(stop)
        if stop.is_set() and not self._stopping.asked:
            self._stopping.asked = True
            self.runner.stop(self.shutdown_grace)
        if getattr(stop, "urgent", lambda: False)() and not self._stopping.urgent:
            self._stopping.urgent = True
            self.runner.stop_now()
        ended = self.runner.ended()
        if time.monotonic() < self._retry_at:
            return not ended
        try:
            self._take_results()
            if not self._stopping.asked and self._inbox_due():
                try:
                    self._read_inbox()
                except claim.NameTaken as exc:
                    self._leave(exc)
            if self._write_due():
                self._write()
            self.outage.ok()
        except StoreError as exc:
            self.outage.failed(exc)
            self._retry_at = time.monotonic() + min(self.poll, self.heartbeat)
        return not ended

    def wait(self, stop):
        """Sleep in select() until the next thing is due or a wake-up (the
        runner has results or ended, a signal came)."""
        if stop.is_set() and not self._stopping.asked:
            return
        now = time.monotonic()
        until = self._record.last_write + self.heartbeat
        if not self._stopping.asked:
            until = min(until, self._inbox.last_poll + self.poll)
            if self._inbox.watch:
                idle = now - self._inbox.last_work > IDLE_AFTER
                until = min(until, now + (IDLE_WATCH_TICK if idle else WATCH_TICK))
        if self._record.unsent:
            until = min(until, self._record.unsent_since + self._flush_interval())
        if self._retry_at > now:
            until = max(until, self._retry_at)
        self._sleep(max(0.0, min(until - now, 1.0)))

    def shutdown(self):
        """The last record: results, returned entries, status `stopped`;
        retried a while if the store is down (the outbox is only here)."""
        self.runner.close()
        deadline = time.monotonic() + max(10 * self.poll, 5.0)
        while True:
            try:
                self._take_results()
                self._write(status=protocol.STOPPED)
                log.info("worker %s stopped (%d result(s) waiting for commit)", self.name, len(self.outbox))
                return
            except StoreError as exc:
                if time.monotonic() > deadline:
                    log.error("worker %s: could not write its outbox: %s", self.name, exc)
                    raise
                time.sleep(self.poll)

    # --- health ---------------------------------------------------------------------
    def _check_health(self, stop):
        runner = self.runner
        if runner.ended() and runner.error is not None:
            raise RunnerFailed(f"worker {self.name}: task runner died: {runner.error}")
        if runner.alive() and time.monotonic() - runner.tick > WEDGED_AFTER:
            raise RunnerFailed(f"worker {self.name}: task runner stuck for {WEDGED_AFTER:.0f}s")
        if self.supervisor_pid and not stop.is_set() and not parent_alive(self.supervisor_pid):
            log.warning("worker %s: its supervisor (pid %d) is gone; stopping", self.name, self.supervisor_pid)
            stop.set()

    # --- the record -------------------------------------------------------------------
    def _claim(self):
        """Refuse a name another live process holds; else take over the
        outbox, inbox position and epoch of the last process under it. Its
        queued entries come back as `returned` results; its task at hand is
        left out, so the scheduler counts that run as lost."""
        self.timeout_us = claim.published_timeout_us(self.store, self._own_timeout_us)
        old = self._instance_record()
        now = now_us()
        held = claim.holder(old, host=self.host, pid=self.pid, token=self.token, now_us=now,
                            timeout_us=self.timeout_us)
        if held:
            raise claim.NameTaken(claim.refusal(self.name, held, now))
        if old is None:
            return
        if old.token not in (None, self.token) and old.host == self.host and not pid_alive(old.pid):
            # known dead (same host, no such pid): the scheduler may forget at
            # once what it held. A predecessor only presumed dead (stopped,
            # heartbeat too old) may be a paused process that comes back: its
            # holdings expire after the instance timeout instead.
            self.replaces = old.token
        self.outbox = [result.to_dict() for result in old.outbox]
        self.taken = old.taken
        self.epoch = old.epoch
        have = {result.key for result in old.outbox}
        for taken in old.queue:
            if taken.key not in have:
                self.outbox.append(Result.of(taken, protocol.RETURNED, b"", None, None).to_dict())

    def _leave(self, exc):
        """Another live process runs under this name, and this one started
        later: take no more work, let the task at hand finish within the
        grace, hand the queue back, and write every result to a handover
        record (protocol.py) that the other process cannot overwrite. Its
        results would otherwise be lost with it and their tasks run again.
        run() raises `exc` once that is written (exit 2)."""
        log.warning("worker %s: another live process runs under this name; handing over %d result(s) "
                    "and the queue", self.name, len(self.outbox))
        self._stopping.leaving = exc
        self._stopping.asked = True
        self.runner.stop(self.shutdown_grace)
        self._record.write_at_once()   # the handover

    def _take_results(self):
        results = self.runner.take_results()
        if results:
            self.outbox.extend(results)
            if not self._record.unsent:
                self._record.results_came(time.monotonic())
            self._inbox.last_work = time.monotonic()

    def _write_due(self):
        now = time.monotonic()
        if now - self._record.last_write >= self.heartbeat:
            return True
        # A result waits for the queue to drain, or FLUSH at most: counted
        # from that result, not from the last write, so the first result of
        # a burst after a quiet spell waits for its fellows.
        record = self._record
        return record.unsent and (self.runner.settled() or now - record.unsent_since >= self._flush_interval())

    def _flush_interval(self):
        """While tasks keep coming: on SQLite, whose scheduler wakes on every
        write, FLUSH_INTERVAL; on a store without that signal (Riak) the
        scheduler reads records once per round anyway, so one write per
        `poll` carries the results of a whole round (each write is a PUT for
        us and a GET for the scheduler) -- unless the scheduler takes
        wake-up hints: then it reads them as soon as they are written."""
        if self._inbox.watch or self._inbox.scheduler_hint:
            return FLUSH_INTERVAL
        return max(FLUSH_INTERVAL, self.poll)

    def _write(self, status=None):
        # The view first, then the results: a task that finishes in between
        # shows in both (harmless), never in neither -- a record that shows
        # `taken` past an entry but the task nowhere makes the scheduler
        # roll back a task that ran, and run it again.
        queue, current = self.runner.view()
        self._take_results()
        news = self._record.unsent   # results, or a queue handed back: the scheduler should look
        if status is None:
            status = protocol.BUSY if queue or current else protocol.IDLE
        leaving = self._stopping.leaving is not None
        self.store.put_record(INSTANCE, protocol.handover_name(self.name, self.token) if leaving else self.name,
                              protocol.instance_record(
            name=self.name, token=self.token, handler=self.handler_name, tags=self.tags,
            host=self.host, pid=self.pid, started=self._started, heartbeat=now_us(), status=status,
            taken=self.taken, epoch=self.epoch, queue=queue, current=current, outbox=self.outbox,
            replaces=self.replaces, handover_of=self.name if leaving else None,
            log_lost=self._lost.count(self.runner), hint=self.hints.address))
        self._record.written(time.monotonic())
        if news or status == protocol.STOPPED:
            self.hints.send(self._inbox.scheduler_hint)

    # --- the inbox ----------------------------------------------------------------------
    def _inbox_due(self):
        if self._inbox.hinted:
            return True   # the scheduler wrote to it (or someone says so: one GET at most per hint gap)
        since = time.monotonic() - self._inbox.last_poll
        if since >= self.poll and (self.runner.backlog() < BUSY_BACKLOG or since >= self.heartbeat):
            # A worker with work queued has nothing to gain from its inbox but
            # the committed list: on Riak each look is a GET, so it looks at
            # most once per heartbeat until its queue runs low (or drains).
            return True
        if self._record.unsent and self.runner.settled() and since >= self.poll / 2:
            # drained: results out, more work in, at once -- unless the
            # inbox was read a moment ago (a batch of fast tasks), when the
            # scheduler cannot have answered yet: on Riak a look is a GET.
            return True
        return self._inbox.watch and self.store.data_version() != self._inbox.seen_version

    def _read_inbox(self):
        if self._inbox.watch:
            self._inbox.seen_version = self.store.data_version()
        self._inbox.hinted = False
        inbox = Inbox.from_dict(self.store.get_record(INBOX, self.name))
        self._inbox.last_poll = time.monotonic()
        if inbox.epoch >= self.epoch:   # the lease holder's address; a fenced-off one's is not
            self._inbox.scheduler_hint = inbox.hint
        epoch = inbox.epoch
        if epoch < self.epoch:
            return  # from a scheduler that lost its lease: fenced off
        if epoch != self.epoch:
            self.epoch = epoch
        committed = inbox.committed_keys()
        if committed:
            kept = [r for r in self.outbox if protocol.run_key(r) not in committed]
            if len(kept) != len(self.outbox):
                self.outbox = kept
        token = inbox.token
        if token is not None and token != self.token:
            self._name.contended_until = time.monotonic() + self.timeout_us / 1e6
            self._check_name(token)
            return
        self.runner.cancel(inbox.cancel)   # before new entries: never start a cancelled run
        fresh = sorted((e for e in inbox.entries if e.seq > self.taken), key=lambda e: e.seq)
        if fresh and (token is None or time.monotonic() < self._name.contended_until):
            # Just started, or another process was seen under this name: make
            # sure the name is still ours before running anything.
            self._check_name(None)
        if fresh:
            self.runner.add([e.to_dict() for e in fresh])   # the runner and its child speak dicts
            self.taken = fresh[-1].seq
            self._inbox.last_work = time.monotonic()

    def _check_name(self, token):
        """Re-read the record: another live process that writes it too? The
        one that started later leaves (exit 2), so exactly one of two goes,
        whichever notices first. `token`: the inbox names that process (our
        predecessor, if the scheduler has not seen our record yet: wait)."""
        self.timeout_us = claim.published_timeout_us(self.store, self._own_timeout_us)
        record = self._instance_record()
        now = now_us()
        if token is None:
            token = record.token if record else None
        if record and record.token not in (None, self.token) and record.is_live(now, self.timeout_us) and \
                (record.started, record.token) < (self._started, self.token):
            raise claim.NameTaken(f"worker {self.name}: another live worker (pid {record.pid} on "
                                  f"{record.host}) runs under this name; leaving")
        if token in (None, self.token):
            return
        if not self._name.addressed_elsewhere:
            log.debug("worker %s: inbox still addressed to a predecessor; waiting", self.name)
        self._name.addressed_elsewhere = True

    def _instance_record(self):
        """The stored record under our name (an Instance), or None."""
        doc = self.store.get_record(INSTANCE, self.name)
        return Instance.from_dict(doc, self.name) if doc else None

    def _on_hint(self):
        """From the hints thread: read the inbox at the next step."""
        self._inbox.hinted = True
        self._wake()

    def _wake(self):
        try:
            os.write(self._wake_w, b".")
        except BlockingIOError:
            pass

    def _sleep(self, seconds):
        if select.select([self._wake_r], [], [], seconds)[0]:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
