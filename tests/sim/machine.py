"""The protocol, explored (issue 18): a Hypothesis rule-based state machine
over the real scheduler iteration, the real worker steps and the real API,
on one store (`ProtocolMachine.backend`), with a fake clock (world.py).

Rules are what an operator and the world can do, in any order: open (also
an id that was removed), rm, cancel, pause/resume, requeue, purge, forget;
a worker's handler finishes, fails or crashes its task; a scheduler starts,
iterates, renews its lease, is killed (memory lost) or releases its lease
cleanly; a worker starts (also under a name a live process holds), steps,
is killed or asked to stop; time passes; the next store write fails, before
or after it landed.

Invariants after every step: epochs never decrease, and no two schedulers
write inboxes under one epoch; a done task's output was made from its own
input (the handler's output names it, and inputs are unique per open);
each run of a task ends at most once (its history); nothing opened is
lost. At the end of each example (teardown) liveness: faults stop, the
queue is resumed, one scheduler and one worker run, and every task must
end within SETTLE_ROUNDS rounds.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from riaktq_cli import Queue
from riaktq_cli.config import loading as riaktq_config
from riaktq_cli.core.errors import RiaktqError, StoreError
from riaktq_cli.store import open_store
from riaktq_cli.core.task import DONE, FINISHED
from tests.sim import world

IDS = ("a", "b")
ID_CHOICE = st.sampled_from(["a", "a", "a", "b"])   # mostly one id: re-created while it runs
NAMES = ("w1", "w2")
SETTLE_ROUNDS = 100      # 40 x 0.3 s, then 60 x 2.5 s: 162 s of simulated time
ENDS = ("close", "restart")
# SIM_SKIP=epochs leaves the epoch invariant out: to show that the liveness
# check alone finds what a reused epoch does (a stuck queue).
SKIP = set(filter(None, os.environ.get("SIM_SKIP", "").split(",")))


class ProtocolMachine(RuleBasedStateMachine):
    backend = "sqlite"
    riak_url = None
    stats = {"examples": 0, "steps": 0}

    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="riaktq-sim-"))
        from tests.conftest import write_config
        self.cfg = riaktq_config.load(str(write_config(self.tmp / "riaktq.toml", self.backend, self.riak_url)))
        self.clock = world.FakeClock()
        self.clock.install()
        self.live_pids = set()
        self.saved_pid_check = world.install_pid_check(self.live_pids)
        self.faults = world.Faults(may_land=self.backend == "riak")
        self.watch = world.Watch()
        self.raw = []                         # every store opened, closed at the end
        self.observer = self._store(None)     # for the invariants: never fails
        self.queue = Queue(self._store("operator"))
        self.schedulers, self.workers = [], []
        self.counter = 0
        self.ledger = {}                      # id -> input of the incarnation that must be there
        self.top_epoch = 0
        self.stats["examples"] += 1

    def _store(self, who):
        store = open_store(self.cfg)
        self.raw.append(store)
        return store if who is None else world.SimStore(store, who, self.faults, self.watch)

    def _next(self):
        self.counter += 1
        return self.counter

    def _pick(self, items, index):
        return items[index % len(items)] if items else None

    @initialize()
    def a_scheduler_and_a_worker(self):
        """Where every deployment starts; the rules add, stop and kill more."""
        self.scheduler_starts()
        self.worker_starts(NAMES[0])

    # --- the operator ----------------------------------------------------------------
    @rule(task_id=ID_CHOICE, delay=st.sampled_from([None, None, None, None, 0.5, 3.0]),
          retry=st.integers(0, 1), removed_first=st.booleans())
    def open(self, task_id, delay, retry, removed_first=False):
        """Open a task (`removed_first`: rm the id at once before, as a
        script that re-creates a task does)."""
        if removed_first:
            self.rm(task_id)
        data = f"{task_id}#{self._next()}".encode()
        try:
            self.queue.open(task_id, data, retry=retry, delay=delay)
        except StoreError:
            pass                              # may have landed: the store says
        except RiaktqError:
            return
        task = self.observer.get_task(task_id)
        if task is not None and task.in_ == data:
            self.ledger[task_id] = data

    @rule(task_id=ID_CHOICE)
    def rm(self, task_id):
        self._operator(lambda: self.queue.rm([task_id]))
        task = self.observer.get_task(task_id)
        if task is None or task.in_ != self.ledger.get(task_id):
            self.ledger.pop(task_id, None)

    def cancel(self, task_id):
        self._operator(lambda: self.queue.cancel([task_id], reason="sim"))

    def requeue(self, task_id):
        self._operator(lambda: self.queue.requeue([task_id]))

    def pause(self, paused):
        self._operator(self.queue.pause if paused else self.queue.resume)

    def purge(self, status):
        self._operator(lambda: self.queue.purge(status, 0))
        for task_id in [i for i in self.ledger if self.observer.get_task(i) is None]:
            del self.ledger[task_id]          # purged: finished, so allowed to go

    def forget(self, name):
        self._operator(lambda: self.queue.forget_instance(name))

    def _operator(self, call):
        try:
            call()
        except RiaktqError:
            pass

    # --- schedulers ---------------------------------------------------------------------
    def scheduler_starts(self):
        owner = f"s{self._next()}"
        self.schedulers.append(world.SimScheduler(self._store(owner), owner))

    def scheduler_iterates(self, i):
        s = self._pick(self.schedulers, i)
        if s is not None:
            s.step()

    def lease_renewal(self, i):
        s = self._pick(self.schedulers, i)
        if s is not None:
            s.renew()

    def scheduler_killed(self, i):
        s = self._pick(self.schedulers, i)
        if s is not None:
            self.schedulers.remove(s)         # memory lost, lease left to expire

    def scheduler_stops(self, i):
        s = self._pick(self.schedulers, i)
        if s is not None:
            self.schedulers.remove(s)
            s.release()                       # SIGTERM: lets the lease go

    # --- workers ------------------------------------------------------------------------
    def worker_starts(self, name):
        pid = 1000 + self._next()
        self.live_pids.add(pid)
        w = world.SimWorker(self._store(f"{name}/{pid}"), name, pid, self.clock, self.live_pids)
        if w.start():
            self.workers.append(w)

    def worker_steps(self, i):
        w = self._pick(self.workers, i)
        if w is not None:
            w.step()
            if w.gone:
                self.workers.remove(w)

    @rule(i=st.integers(0, 3), outcome=st.sampled_from(["done", "done", "done", "failed", "crashed"]))
    def handler_ends(self, i, outcome):
        w = self._pick(self.workers, i)
        if w is not None:
            w.runner.finish(outcome)

    def worker_killed(self, i):
        w = self._pick(self.workers, i)
        if w is not None:
            self.workers.remove(w)
            w.end()                           # kill -9: no last record

    def worker_asked_to_stop(self, i):
        w = self._pick(self.workers, i)
        if w is not None:
            w.stop.set()                      # SIGTERM: it drains in its next steps

    @rule(seconds=st.sampled_from([0.1, 0.5]))
    def everyone_steps(self, seconds):
        """A moment of normal life: time passes, each scheduler and each
        worker takes a step (handlers keep running)."""
        self.clock.advance(seconds)
        self._workers_step()
        for s in list(self.schedulers):
            s.step()
        self._workers_step()

    def _workers_step(self):
        for w in list(self.workers):
            w.step()
            if w.gone:
                self.workers.remove(w)

    # --- the world ----------------------------------------------------------------------
    @rule(seconds=st.sampled_from([0.05, 0.3, 1.0, 2.5, 5.0]))
    def time_passes(self, seconds):
        self.clock.advance(seconds)

    def next_write_fails(self, how):
        self.faults.arm(how)

    # --- how often each thing happens: one rule per kind of event, so that
    # --- disruptions do not drown the work they disrupt ------------------------------
    @rule(action=st.sampled_from(["cancel", "requeue", "requeue", "pause", "resume", "resume", "purge done",
                                  "purge failed", "forget w1", "forget w2"]),
          task_id=ID_CHOICE)
    def operator(self, action, task_id):
        if action in ("cancel", "requeue"):
            getattr(self, action)(task_id)
        elif action in ("pause", "resume"):
            self.pause(action == "pause")
        else:
            verb, what = action.split()
            getattr(self, verb)(what)

    @rule(action=st.sampled_from(["iterates", "iterates", "renews"]), i=st.integers(0, 3))
    def scheduler(self, action, i):
        (self.scheduler_iterates if action == "iterates" else self.lease_renewal)(i)

    @rule(i=st.integers(0, 3))
    def worker(self, i):
        self.worker_steps(i)

    @rule(what=st.sampled_from(["scheduler starts", "scheduler killed", "scheduler stops", "worker starts",
                                "worker killed", "worker asked to stop", "write fails before",
                                "write fails after"]),
          i=st.integers(0, 3))
    def disruption(self, what, i):
        if what == "scheduler starts":
            self.scheduler_starts()
        elif what.startswith("scheduler"):
            (self.scheduler_killed if what.endswith("killed") else self.scheduler_stops)(i)
        elif what == "worker starts":
            self.worker_starts(NAMES[i % len(NAMES)])
        elif what == "worker killed":
            self.worker_killed(i)
        elif what == "worker asked to stop":
            self.worker_asked_to_stop(i)
        else:
            self.next_write_fails(what.split()[-1])

    # --- invariants ---------------------------------------------------------------------
    @invariant()
    def epochs_never_decrease(self):
        ProtocolMachine.stats["steps"] += 1
        if "epochs" in SKIP:
            return
        top = max((c.get("epoch", 0) for c in self.observer.read_lease()), default=0)
        assert top >= self.top_epoch, f"lease epoch went from {self.top_epoch} down to {top}"
        self.top_epoch = top
        epochs = [e for e, _ in self.watch.inbox_epochs]
        assert epochs == sorted(epochs), f"inbox epochs written out of order: {self.watch.inbox_epochs}"
        shared = {e: sorted(w) for e, w in self.watch.writers.items() if len(w) > 1}
        assert not shared, f"two schedulers wrote inboxes under one epoch: {shared}"

    @invariant()
    def results_belong_to_their_task(self):
        for task in self._tasks():
            if task.status == DONE:
                assert task.out == world.handler_output(task.in_), \
                    f"task {task.id} (in {task.in_!r}) is done with {task.out!r}: another incarnation's result"
            if task.out is not None and task.out.startswith(world.failure_output(b"")):
                assert task.out == world.failure_output(task.in_), \
                    f"task {task.id} (in {task.in_!r}) failed with {task.out!r}: another incarnation's result"
            ends = [e[3] for e in task.history if e[1] in ENDS or (e[1] == "cancel" and e[2] is not None)]
            assert len(ends) == len(set(ends)), f"task {task.id}: a run ended twice: {task.history}"

    @invariant()
    def nothing_opened_is_lost(self):
        for task_id, data in self.ledger.items():
            task = self.observer.get_task(task_id)
            assert task is not None, f"task {task_id} (in {data!r}) is lost"
            assert task.in_ == data, f"task {task_id}: in {task.in_!r}, opened with {data!r}"

    def _tasks(self):
        found = self.observer.get_tasks(list(self.observer.iter_ids()))
        return list(found.values())

    # --- liveness, then clean up ---------------------------------------------------------
    def teardown(self):
        try:
            if sys.exc_info()[0] is None:
                self.settle()
        finally:
            for w in self.workers:
                w.end()
            world.remove_pid_check(self.saved_pid_check)
            self.clock.uninstall()
            for store in self.raw:
                store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def settle(self):
        """Faults stop: nothing fails, nothing is paused, one scheduler and
        one worker run; every task must then end within SETTLE_ROUNDS."""
        self.faults.armed = None
        self.queue.resume()
        if not self.schedulers:
            self.scheduler_starts()
        if not any(not w.stop.is_set() for w in self.workers):
            self.worker_starts(f"w-final-{self._next()}")
        pending = []
        for round_ in range(SETTLE_ROUNDS):
            # short steps first; then long ones, past the protocol's longest
            # wait (an inbox read empty is doubted for up to 60 s: inbox_reads.py)
            self.clock.advance(0.3 if round_ < 40 else 2.5)
            for s in list(self.schedulers):
                s.step()
            for w in list(self.workers):
                while w.runner.finish("done"):
                    pass
                w.step()
                if w.gone:
                    self.workers.remove(w)
            self.epochs_never_decrease()
            self.results_belong_to_their_task()
            self.nothing_opened_is_lost()
            pending = [t for t in self._tasks() if t.status not in FINISHED]
            if not pending:
                return
        raise AssertionError(f"stuck queue: {[(t.id, t.status, t.assignee, t.run) for t in pending]} "
                             f"not ended after {SETTLE_ROUNDS} rounds of one scheduler and live workers")


def fail_fast_env():
    """SIM_EXAMPLES / SIM_STEPS from the environment (make soak)."""
    return int(os.environ.get("SIM_EXAMPLES", "0")), int(os.environ.get("SIM_STEPS", "0"))
