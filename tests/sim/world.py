"""The world the protocol simulation runs in: one fake clock, stores that
fail on request, a handler process simulated in-process, and single-step
drivers of the real scheduler and the real worker.

No thread and no real sleep: the scheduler's lease is renewed when the
simulation says so (its renewal thread is never started), the worker's
runner thread is replaced by `FakeRunner` (the handler's outcome is a rule
of the simulation), and every riaktq_cli module that reads `time` reads the
fake clock (`FakeClock.install` rebinds the `time` name of each of them:
`clock.now_us` included, so µs task fields, heartbeats, lease expiry,
`time.monotonic()` deadlines and `time.sleep` all follow the simulation).
"""

import collections
import os
import sys
import time as real_time

from riaktq_cli.core import protocol
from riaktq_cli.core.errors import PartialUpdate, StoreError, StoreUnavailable
from riaktq_cli.scheduler.lease import Lease, LeaseLost
from riaktq_cli.scheduler.process import SchedulerLoop
from riaktq_cli.runtime.outage import Outage
from riaktq_cli.scheduler.iteration import Scheduler
from riaktq_cli.store.base import INBOX
from riaktq_cli.worker import claim
from riaktq_cli.worker import instance as worker_instance
from riaktq_cli.worker.instance import Worker

INSTANCE_TIMEOUT = 4.0     # s; the scheduler's lease lasts half of it
HEARTBEAT, POLL = 1.0, 0.2
HOST = "sim-host"


class FakeClock:
    """Seconds since the epoch, moved by the simulation. Every read moves it
    on by a microsecond, as running code does: two writes of one record
    never carry the same time (Riak's record listing relies on that)."""

    def __init__(self, start=None):
        self.now = float(int(start if start is not None else real_time.time()))
        self._patched = []

    def advance(self, seconds):
        self.now += max(0.0, seconds)

    def _read(self):
        self.now += 1e-6
        return self.now

    # --- the `time` module's face ------------------------------------------------
    def time(self):
        return self._read()

    def time_ns(self):
        return int(self._read() * 1e9)

    def monotonic(self):
        return self._read()

    perf_counter = monotonic

    def sleep(self, seconds):
        self.advance(seconds)

    def __getattr__(self, name):          # strftime, localtime, ...
        return getattr(real_time, name)

    def install(self):
        """Rebind `time` in every loaded riaktq_cli module that imported it."""
        for name, module in list(sys.modules.items()):
            if name.startswith("riaktq_cli") and getattr(module, "time", None) is real_time:
                module.time = self
                self._patched.append(module)

    def uninstall(self):
        for module in self._patched:
            module.time = real_time
        self._patched = []


class Faults:
    """The next write of any component fails once: `before` it reaches the
    store, or (where the store's contract allows: Riak) `after` it landed."""

    def __init__(self, may_land):
        self.may_land = may_land
        self.armed = None
        self.fired = 0

    def arm(self, how):
        self.armed = how if (how == "before" or self.may_land) else "before"

    def take(self):
        how, self.armed = self.armed, None
        if how:
            self.fired += 1
        return how


class Watch:
    """What every component wrote that the invariants look at: the epoch of
    each inbox write and who wrote it."""

    def __init__(self):
        self.writers = collections.defaultdict(set)    # epoch -> component names
        self.inbox_epochs = []                         # in order of writing


class SimStore:
    """One component's view of the store (each process has its own
    connection and caches), failing the writes the Faults ask for."""

    def __init__(self, store, who, faults, watch):
        self._store, self.who, self._faults, self._watch = store, who, faults, watch

    def __getattr__(self, name):
        return getattr(self._store, name)

    def _write(self, call, *args, landed_error=None):
        how = self._faults.take()
        if how == "before":
            raise StoreUnavailable(f"sim: {self.who}'s write failed before it reached the store")
        result = call(*args)
        if how == "after":
            raise landed_error(result) if landed_error else \
                StoreUnavailable(f"sim: {self.who}'s write landed, its answer was lost")
        return result

    def create_tasks(self, tasks):
        return self._write(self._store.create_tasks, tasks)

    def update_tasks(self, task_ids, change):
        ids = list(dict.fromkeys(task_ids))
        return self._write(self._store.update_tasks, ids, change,
                           landed_error=lambda written: PartialUpdate("sim: the answer was lost", [], ids))

    def delete_task(self, task_id, status=None):
        return self._write(self._store.delete_task, task_id, status)

    def delete_tasks(self, task_ids, status=None):
        return self._write(self._store.delete_tasks, task_ids, status)

    def put_record(self, kind, name, doc):
        self._note(kind, {name: doc})
        return self._write(self._store.put_record, kind, name, doc)

    def put_records(self, kind, docs):
        self._note(kind, docs)
        return self._write(self._store.put_records, kind, docs)

    def delete_record(self, kind, name):
        return self._write(self._store.delete_record, kind, name)

    def swap_lease(self, choose):
        return self._write(self._store.swap_lease, choose)

    def _note(self, kind, docs):
        if kind == INBOX:
            for doc in docs.values():
                self._watch.writers[doc.get("epoch", 0)].add(self.who)
                self._watch.inbox_epochs.append((doc.get("epoch", 0), self.who))


class NoEvents:
    def emit(self, transition, task, **extra):
        pass


class _NoThread:
    def join(self, timeout=None):
        pass


class _Flag:
    """A stop flag that never waits."""

    def __init__(self):
        self._set = False

    def is_set(self):
        return self._set

    def set(self):
        self._set = True

    def wait(self, timeout=None):
        return self._set


class SimScheduler:
    """The real Scheduler, one pass at a time: what SchedulerLoop.run does
    between its waits (take or renew the lease, iterate, apply the error
    policy), with the renewal thread's work done by `renew`."""

    def __init__(self, store, owner):
        self.owner = owner
        self.store = store
        self.sched = Scheduler(store, instance_timeout=INSTANCE_TIMEOUT, prefetch=4, events=NoEvents(),
                               owner=owner, retry_delay=0.5, retry_delay_max=2.0)
        self.loop = SchedulerLoop(self.sched)
        self.sched.lease = Lease(store, owner, ttl=INSTANCE_TIMEOUT / 2, floor=self.loop.epoch_floor)  # as run() does
        self.sched.lease._thread = _NoThread()     # renewals come from the simulation
        self.outage = Outage(f"scheduler {owner}")

    @property
    def lease(self):
        return self.sched.lease

    def renew(self):
        if self.lease.held:
            try:
                self.lease.attempt()
            except StoreError:
                pass

    def step(self):
        """One pass; True if an iteration ran."""
        if not self.lease.held:
            if not self.loop.take_lease(self.outage, _Flag(), True, 0.1):
                return False
        else:
            self.renew()
        try:
            self.sched.iteration()
        except (LeaseLost, StoreError):
            return False
        return True

    def release(self):
        self.lease.release()


class FakeRunner:
    """The runner thread and handler process, simulated: entries start in
    order as the head frees; the simulation ends the head (`finish`). Same
    interface as worker.runner.Runner, as far as Worker uses it."""

    def __init__(self, clock):
        self.clock = clock
        self.tags = []
        self.error = None
        self._pending = collections.deque()
        self._head = None             # (entry, sat µs)
        self._results = []
        self._mode = "running"
        self._grace_until = None
        self._cancel = set()

    @property
    def tick(self):
        return self.clock.monotonic()

    def _now_us(self):
        return int(self.clock.time() * 1e6)

    def _settle(self):
        if self._mode == "draining" and self._head and self.clock.monotonic() >= self._grace_until:
            self._results.append(protocol.make_result(self._head[0], protocol.RETURNED, b"", None, None))
            self._head = None
        if self._mode != "running":
            self._results.extend(protocol.make_result(e, protocol.RETURNED, b"", None, None) for e in self._pending)
            self._pending.clear()
            return
        for entry in [e for e in self._pending if self._cancelled(e)]:
            self._pending.remove(entry)
            self._results.append(protocol.make_result(entry, protocol.RETURNED, b"", None, None))
        if self._head and self._cancelled(self._head[0]):
            self._end_head("failed", b"cancelled")
        if self._head is None and self._pending:
            self._head = (self._pending.popleft(), self._now_us())

    def output_lost(self):
        """Lines of handler output the log could not take: none here."""
        return 0

    def _cancelled(self, entry):
        return (entry["id"], entry.get("run", 0), entry["seq"]) in self._cancel

    def _end_head(self, status, out):
        entry, sat = self._head
        self._head = None
        self._results.append(protocol.make_result(entry, status, out, sat, max(1, self._now_us() - sat)))

    # --- the simulation's side ------------------------------------------------------
    def finish(self, outcome):
        """End the task at hand: done (out: what the handler made of the
        input), failed, or crashed (the handler process died)."""
        self._settle()
        if self._head is None:
            return False
        entry = self._head[0]
        if outcome == "done":
            self._end_head("done", handler_output(protocol.entry_input(entry)))
        elif outcome == "failed":
            self._end_head("failed", failure_output(protocol.entry_input(entry)))
        else:
            self._end_head(protocol.CRASHED, b"handler process died (killed by SIGKILL)")
        self._settle()
        return True

    # --- Worker's side -----------------------------------------------------------------
    def start_child(self, cancelled=lambda: False):
        return True

    def add(self, entries):
        self._pending.extend(entries)
        self._settle()

    def cancel(self, items):
        self._cancel = {tuple(item[:3]) for item in items}
        self._settle()

    def stop(self, grace):
        if self._mode == "running":
            self._mode, self._grace_until = "draining", self.clock.monotonic() + grace
        self._settle()

    def stop_now(self):
        self._mode = "ending"
        if self._head:
            self._results.append(protocol.make_result(self._head[0], protocol.RETURNED, b"", None, None))
            self._head = None
        self._settle()

    def take_results(self):
        self._settle()
        results, self._results = self._results, []
        return results

    def view(self):
        self._settle()
        return list(self._pending), self._head

    def backlog(self):
        return len(self._pending) + (1 if self._head else 0)

    def settled(self):
        return not (self._pending or self._head or self._results)

    def ended(self):
        self._settle()
        return self._mode != "running" and self._head is None and not self._pending

    def alive(self):
        return True

    def join(self, timeout=None):
        pass

    def close(self):
        self.stop_now()


def handler_output(data):
    """What the simulated handler returns for `data`: tells whose input a
    committed result was made from."""
    return b"out:" + data


def failure_output(data):
    """What the simulated handler fails with, naming its input too."""
    return b"boom:" + data


class SimWorker:
    """The real Worker (main thread), one step at a time, with a fake pid
    on the simulation's one host and FakeRunner for its runner thread."""

    def __init__(self, store, name, pid, clock, live_pids):
        self.name, self.pid, self.store = name, pid, store
        handler = type("Handler", (), {"name": "sim", "options": {}})()
        w = Worker(store, name, handler, heartbeat=HEARTBEAT, poll=POLL, shutdown_grace=2.0,
                   instance_timeout=INSTANCE_TIMEOUT)
        os.close(w.runner._wake_r)            # the real runner's pipe: never used
        os.close(w.runner._wake_w)
        w.runner = FakeRunner(clock)
        w.host, w.pid = HOST, pid
        w._sleep = clock.advance
        self.worker, self.stop, self.up, self.gone = w, _Flag(), False, False
        self.live_pids = live_pids

    @property
    def runner(self):
        return self.worker.runner

    def start(self):
        """initialize(): False when the name is refused (exit 2)."""
        try:
            self.up = self.worker.initialize(self.stop)
        except claim.NameTaken:
            self.up = False
        if not self.up:
            self.end()
        return self.up

    def step(self):
        if self.gone:
            return
        if not self.worker.step(self.stop):
            try:
                self.worker.shutdown()
            except StoreError:
                pass          # its outbox dies with it: the scheduler counts those runs as lost
            self.end()

    def end(self):
        self.gone = True
        self.live_pids.discard(self.pid)
        w = self.worker
        for fd in (w._wake_r, w._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def install_pid_check(live_pids):
    """The claim's `pid_alive` answers from the simulation's processes."""
    check = lambda pid: pid in live_pids   # noqa: E731
    saved = (claim.pid_alive, worker_instance.pid_alive)
    claim.pid_alive = worker_instance.pid_alive = check
    return saved


def remove_pid_check(saved):
    claim.pid_alive, worker_instance.pid_alive = saved
