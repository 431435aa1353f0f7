"""The scheduler on a bad day (issue 8), on both stores.

Run identity, bounded attempts, extreme priorities, a tagged backlog, an
inbox whose sequence was lost, racing schedulers and the lease's fencing
epoch, events at least once, and errors at the edges (events file, Riak
errors, malformed siblings, outages).
"""

import json
import threading
import time

import pytest

from riaktq_cli import protocol, task as t
from riaktq_cli.clock import now_us
from riaktq_cli.events import EventSink
from riaktq_cli.lease import Lease
from riaktq_cli.scheduler import Scheduler
from tests.conftest import read_events, wait_until


def instance(name, tags=(), taken=0, queue=(), current=None, outbox=(), heartbeat=None, status="idle",
             token=None, replaces=None):
    return {"name": name, "tags": list(tags), "heartbeat": heartbeat or now_us(), "status": status,
            "taken": taken, "queue": list(queue), "current": current, "outbox": list(outbox),
            "token": token, "replaces": replaces}


class Recorder(EventSink):
    def __init__(self):
        super().__init__(None)
        self.seen = []

    def emit(self, transition, task, **extra):
        self.seen.append((transition, task.id, task.run))


def scheduler(store, prefetch=1, max_attempts=3):
    return Scheduler(store, instance_timeout=2.0, prefetch=prefetch, events=Recorder(),
                     max_attempts=max_attempts)


def open_task(store, task_id, **kw):
    store.create_task(t.new_task(task_id, task_id.encode(), now=kw.pop("cat", now_us()), **kw))


def assigned_to_w(store, ids, token=None):
    """Open `ids` in that order, register instance w (prefetch len(ids)) and
    run one iteration: each is assigned to w. Returns the scheduler."""
    for n, task_id in enumerate(ids, 1):
        open_task(store, task_id, cat=n)
    store.put_record("instance", "w", instance("w", token=token))
    s = scheduler(store, prefetch=len(ids))
    s.iteration()
    return s


def run_once(store, s, name, status, out=b"", token=None):
    """Let `name` report `status` for the entry the scheduler gave it."""
    entry = store.get_record("inbox", name)["entries"][-1]
    store.put_record("instance", name, instance(name, taken=entry["seq"], token=token, outbox=[
        protocol.make_result(entry, status, out, now_us(), 1000)]))
    return entry


# --- bounded attempts ----------------------------------------------------------

def test_a_crashing_task_ends_failed_after_max_attempts(store):
    open_task(store, "poison")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store, max_attempts=3)
    for attempt in range(1, 4):
        s.iteration()
        task = store.get_task("poison")
        assert (task.status, task.run) == ("nextup", attempt)
        run_once(store, s, "w", protocol.CRASHED, b"handler process died (exit code 5)")
        s.iteration()
    task = store.get_task("poison")
    assert task.status == "failed" and task.lost == 3
    assert task.out == b"lost 3 times; last on instance w: handler process died (exit code 5)"
    assert ("close", "poison", 3) in s.events.seen


def test_per_task_max_attempts_and_returned_runs_cost_nothing(store):
    open_task(store, "once", max_attempts=1)
    open_task(store, "handed-back")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store, prefetch=2)
    s.iteration()
    entries = {e["id"]: e for e in store.get_record("inbox", "w")["entries"]}
    store.put_record("instance", "w", instance("w", taken=2, outbox=[
        protocol.make_result(entries["once"], protocol.CRASHED, b"killed by SIGKILL", 1, 1),
        protocol.make_result(entries["handed-back"], protocol.RETURNED, b"", 1, 1)]))
    s.iteration()
    once, back = store.get_task("once"), store.get_task("handed-back")
    assert once.status == "failed" and once.out.startswith(b"lost 1 time; last on instance w")
    assert back.lost == 0 and back.run >= 1 and back.status in ("todo", "nextup")


def test_a_lost_instance_costs_an_attempt_only_for_the_task_it_was_running(store):
    s = assigned_to_w(store, ["a", "b"])
    dead = now_us() - 10_000_000
    store.put_record("instance", "w", instance("w", taken=2, heartbeat=dead,
                                               current={"id": "a", "seq": 1, "run": 1, "since": dead},
                                               queue=[{"id": "b", "seq": 2, "run": 1}]))
    assert s.iteration()["rollback"] == 2
    assert (store.get_task("a").lost, store.get_task("b").lost) == (1, 0)


def test_only_the_current_run_is_committed(store):
    """A result of an older run of the same task on the same instance (the
    name reused, or a late copy) is never committed."""
    open_task(store, "a", retry=1)
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    first = run_once(store, s, "w", "failed", b"boom")
    s.iteration()  # restart, and run 2 goes to w
    assert store.get_task("a").run == 2
    stale = protocol.make_result(first, "done", b"stale", 5, 5)
    stale_key = protocol.run_key(stale)
    inbox = store.get_record("inbox", "w")
    inbox["committed"] = [c for c in inbox["committed"] if tuple(c) != stale_key]
    s._inboxes["w"]["committed"] = inbox["committed"]
    store.put_record("instance", "w", instance("w", taken=1, outbox=[stale]))
    s.iteration()
    task = store.get_task("a")
    assert task.status == "nextup" and task.out == b"boom"


# --- priorities ------------------------------------------------------------------

def test_extreme_priorities_order_and_survive_a_restart(store):
    open_task(store, "max", priority=t.PRIORITY_MAX, cat=3)
    open_task(store, "zero", priority=0, cat=2)
    open_task(store, "min", priority=t.PRIORITY_MIN, retry=2, cat=1)
    assert [x.id for x in store.iter_todo(page_size=10)] == ["max", "zero", "min"]
    store.delete_task("max")
    store.delete_task("zero")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    for _ in range(2):
        s.iteration()
        run_once(store, s, "w", "failed", b"no")
    s.iteration()
    task = store.get_task("min")
    assert task.priority == t.PRIORITY_MIN and task.retry == 0 and task.status == "nextup"


@pytest.mark.parametrize("args", [["--priority", "99999999999999999999999"],
                                  ["--priority", str(-(2 ** 63))],
                                  ["--retry", "99999999999999999999"],
                                  ["--retry", "-1"]])
def test_out_of_range_numbers_at_open_are_one_line_and_exit_2(procs, store, args):
    result = procs.run("open", "big", "--in", "x", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert store.get_task("big") is None


def test_out_of_range_numbers_in_a_batch(procs, store, tmp_path):
    batch = tmp_path / "b.jsonl"
    batch.write_text(json.dumps({"id": "x", "in": "x", "priority": 2 ** 70}) + "\n")
    result = procs.run("open", "--batch", str(batch))
    assert result.returncode == 2 and b"priority" in result.stderr
    assert store.get_task("x") is None


# --- fair scan -------------------------------------------------------------------

def test_a_tagged_backlog_never_blocks_an_untagged_task(store):
    store.create_tasks([t.new_task(f"gpu-{i:03d}", b"", priority=10, tags=["gpu"], now=i + 1)
                        for i in range(400)])
    open_task(store, "plain", priority=0, cat=1000)
    store.put_record("instance", "cpu", instance("cpu"))
    s = scheduler(store)
    assert s.iteration()["assign"] == 1
    assert store.get_task("plain").assignee == "cpu"
    # and a gpu instance still gets the gpu tasks in order
    store.put_record("instance", "gpu", instance("gpu", tags=["gpu", "x"]))
    s.iteration()
    assert store.get_task("gpu-000").assignee == "gpu"


# --- inbox sequence -----------------------------------------------------------------

def test_a_lost_inbox_never_reuses_a_taken_sequence_number(store):
    open_task(store, "a")
    store.put_record("instance", "w", instance("w", taken=50))
    s = scheduler(store)
    s.inbox_reads.doubt_us = 0   # an empty read is believed at once (inbox_reads.py: else after DOUBT_FOR)
    s.iteration()
    entries = store.get_record("inbox", "w")["entries"]
    assert [e["seq"] for e in entries] == [51]
    for _ in range(3):
        summary = s.iteration()
        assert summary["rollback"] == 0 and summary["assign"] == 0
    assert store.get_task("a").run == 1


# --- fencing ---------------------------------------------------------------------------

def test_a_new_process_under_a_name_gets_the_inbox_readdressed(store):
    s = assigned_to_w(store, ["a"], token="first")
    assert store.get_record("inbox", "w")["token"] == "first"
    store.put_record("instance", "w", instance("w", token="second", replaces="first"))
    s.iteration()
    inbox = store.get_record("inbox", "w")
    assert inbox["token"] == "second"
    assert inbox["entries"] == []
    task = store.get_task("a")
    # the entry meant for the first process was withdrawn and the task sent
    # back without costing an attempt, then assigned again, to "second"
    assert (task.status, task.lost) == ("todo", 0)
    s.iteration()
    inbox = store.get_record("inbox", "w")
    assert [e["run"] for e in inbox["entries"]] == [store.get_task("a").run] == [2]


class StoreProxy:
    def __init__(self, store, swap):
        self._store, self._swap = store, swap

    def __getattr__(self, name):
        return getattr(self._store, name)

    def swap_lease(self, choose):
        return self._swap(self._store, choose)


def test_two_racing_schedulers_one_holder(store, backend):
    """B reads "no lease" and decides first, but its write lands only after
    A has written and seen its own copy alone; then B's write answer shows
    both copies and B wins the tie (earlier `since`). Without the settle and
    second look, both would believe they hold the lease."""
    b_decided, a_wrote = threading.Event(), threading.Event()

    def slow_swap(real, choose):
        def late(copies):
            doc = choose(copies)
            b_decided.set()
            if backend == "riak":       # SQLite's swap is one transaction: no window
                a_wrote.wait(10)
            return doc
        return real.swap_lease(late)

    def plain_swap(real, choose):
        try:
            return real.swap_lease(choose)
        finally:
            a_wrote.set()

    b = Lease(StoreProxy(store, slow_swap), "sched-b", ttl=5.0, settle=0.5)
    a = Lease(StoreProxy(store, plain_swap), "sched-a", ttl=5.0, settle=0.5)
    results = {}
    th = threading.Thread(target=lambda: results.setdefault("b", b.attempt()))
    th.start()
    assert b_decided.wait(10)
    results["a"] = a.attempt()
    th.join()
    assert sorted(results.values()) == [False, True], results
    holder, other = (a, b) if a.held else (b, a)
    assert other.attempt() is False and other.holder["owner"] == holder.owner
    assert holder.epoch == 1


def test_two_live_processes_under_one_name_keep_what_either_holds(store):
    """Each overwrites the other's record: what the first process runs must
    not be rolled back (and run again) because the second's record is the
    one the scheduler read -- until the first has been unseen for the
    instance timeout."""
    s = assigned_to_w(store, ["a"], token="first")
    store.put_record("instance", "w", instance("w", token="first", taken=1,
                                               current={"id": "a", "seq": 1, "run": 1, "since": now_us()}))
    s.iteration()
    store.put_record("instance", "w", instance("w", token="second", taken=1))
    for _ in range(3):
        assert s.iteration()["rollback"] == 0
    assert store.get_task("a").status == "nextup" and store.get_task("a").run == 1
    s.instance_timeout = 0.2          # the first process is now presumed dead
    time.sleep(0.3)
    assert s.iteration()["rollback"] == 1


def test_lease_is_renewed_while_an_iteration_is_slow_and_takeover_bumps_the_epoch(store):
    first = Lease(store, "first", ttl=2.0, settle=0.2)
    assert first.attempt()
    first.keep_renewed()
    deadline = time.monotonic() + 4.0     # twice the lease: only renewals keep it
    while time.monotonic() < deadline:
        assert first.valid()
        assert Lease(store, "rival", ttl=2.0, settle=0.2).attempt() is False
        time.sleep(0.2)
    first._stop.set()                     # the first scheduler hangs: no more renewals
    second = Lease(store, "second", ttl=2.0, settle=0.2)
    wait_until(second.attempt, timeout=10, message="takeover after expiry")
    assert second.epoch == first.epoch + 1
    assert not first.valid()


def leased_scheduler(store, ttl):
    """One todo task, instance w, and a scheduler holding a lease of `ttl` s."""
    open_task(store, "a")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.lease = Lease(store, "me", ttl=ttl, settle=0.1)
    assert s.lease.attempt()
    return s


def test_inboxes_carry_the_lease_epoch(store):
    s = leased_scheduler(store, 5.0)
    s.iteration()
    assert store.get_record("inbox", "w")["epoch"] == s.lease.epoch == 1


def test_a_scheduler_whose_lease_lapsed_writes_nothing(store):
    from riaktq_cli.lease import LeaseLost
    s = leased_scheduler(store, 0.3)
    wait_until(lambda: not s.lease.valid(), timeout=5, message="lease lapse")
    with pytest.raises(LeaseLost):
        s.iteration()
    assert store.get_task("a").status == "todo" and store.get_record("inbox", "w") is None


# --- events ------------------------------------------------------------------------------

def test_a_takeover_emits_the_close_the_dead_scheduler_wrote(store):
    open_task(store, "a")
    store.put_record("instance", "w", instance("w"))
    dying = scheduler(store)
    dying.iteration()
    entry = run_once(store, dying, "w", "done", b"ok")
    result = store.get_record("instance", "w")["outbox"][0]
    # the dying scheduler wrote the close, then died before its event
    store.update_tasks(["a"], lambda task: t.close(task, "w", "done", b"ok", result["sat"], result["laf"])[0])
    successor = scheduler(store)
    successor.iteration()
    assert ("close", "a", entry["run"]) in successor.events.seen
    successor.iteration()
    assert successor.events.seen.count(("close", "a", entry["run"])) == 1


def test_a_takeover_emits_the_loss_failure_the_dead_scheduler_wrote(store):
    """A run lost with its instance that ends the task (max_attempts) has no
    result to recognize: the successor finds the run in the lost instance's
    record and emits the close again, once."""
    open_task(store, "a", max_attempts=1)
    store.put_record("instance", "w", instance("w"))
    dying = scheduler(store)
    dying.iteration()
    dead = now_us() - 10_000_000
    store.put_record("instance", "w", instance("w", taken=1, heartbeat=dead,
                                               current={"id": "a", "seq": 1, "run": 1, "since": dead,
                                                        "inc": store.get_task("a").inc}))
    dying.iteration()                        # writes a failed "lost 1 time" ...
    assert store.get_task("a").status == t.FAILED
    successor = scheduler(store)             # ... and its event died with it
    successor.iteration()
    assert ("close", "a", 1) not in successor.events.seen, "only a scheduler that took the lease re-emits"
    import threading
    assert successor.run(0.05, threading.Event(), once=True)   # takes the lease, one iteration
    successor.iteration()
    assert successor.events.seen.count(("close", "a", 1)) == 1


def test_events_carry_run_and_rev(tmp_path, store):
    open_task(store, "a")
    store.put_record("instance", "w", instance("w"))
    sink = EventSink(str(tmp_path / "ev.jsonl"))
    s = Scheduler(store, instance_timeout=2.0, prefetch=1, events=sink)
    s.iteration()
    run_once(store, s, "w", "done", b"ok")
    s.iteration()
    sink.close()
    events = read_events(tmp_path / "ev.jsonl")
    assert [(e["transition"], e["run"]) for e in events] == [("assign", 1), ("close", 1)]
    assert events[1]["rev"] == store.get_task("a").rev


def test_an_unwritable_events_file_is_one_line_at_start(procs, tmp_path):
    result = procs.run("scheduler", "--once", "--events", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert result.returncode == 2
    assert result.stderr.decode().strip().splitlines()[-1].startswith("riaktq: error: events file")


def test_a_full_disk_under_the_events_file_does_not_stop_scheduling(procs, store, tmp_path):
    sched = procs.start("scheduler", "--interval", "100ms", "--events", "/dev/full", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "w1", name="worker")
    for i in range(3):
        assert procs.run("open", f"t{i}", "--in", "x").returncode == 0
    wait_until(lambda: store.count_by_status()["done"] == 3, timeout=60, message="3 done")
    assert sched.poll() is None
    with open(sched.log_path, encoding="utf-8") as fh:
        text = fh.read()
    assert text.count("write failed") == 1, text


# --- Riak errors ---------------------------------------------------------------------------

def test_a_riak_write_error_other_than_503_is_may_have_landed(store, fault_server, backend):
    if backend != "riak":
        pytest.skip("Riak only")
    open_task(store, "a")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    run_once(store, s, "w", "done", b"ok")
    fault_server.fail_next(1, status=500, kinds=["put"])   # the close write gets a 500
    s.iteration()
    committed = [k[:2] for k in store.get_record("inbox", "w")["committed"]]
    assert ["a", 1] not in committed and store.get_task("a").status == "nextup"
    fault_server.clear_faults()
    s.iteration()
    assert store.get_task("a").status == "done"
    assert ["a", 1] in [k[:2] for k in store.get_record("inbox", "w")["committed"]]


def test_a_malformed_sibling_is_dropped_and_the_valid_one_kept(store, backend):
    if backend != "riak":
        pytest.skip("siblings are Riak's")
    open_task(store, "a", priority=7)
    # a blind write (no vclock) of something that is JSON but not a task
    store.client.store(store.btype, store.bucket("task"), "a", b'{"id": "a", "status": 5}',
                       "application/json")
    task = store.get_task("a")
    assert task is not None and task.priority == 7


def test_an_outage_is_logged_once_not_per_request(procs, store, fault_server, backend):
    if backend != "riak":
        pytest.skip("Riak only")
    sched = procs.start("scheduler", "--interval", "100ms", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "w1", name="worker")
    wait_until(lambda: store.get_record("instance", "w1"), message="worker up")
    fault_server.set_down(True)
    time.sleep(4)   # the outage itself: what it costs in log lines is the point
    fault_server.set_down(False)
    assert procs.run("open", "after", "--in", "x").returncode == 0
    wait_until(lambda: (store.get_task("after") or t.Task("x")).status == "done", timeout=30,
               message="work resumes")
    with open(sched.log_path, encoding="utf-8") as fh:
        lines = [ln for ln in fh if "riak" in ln or "unavailable" in ln or "answers again" in ln]
    assert len(lines) <= 6, "".join(lines)


# --- signals -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sigterm_always_ends_a_busy_looping_scheduler(procs, tmp_path):
    """The stop handler takes no lock: 1 SIGTERM in 10 used to deadlock a
    scheduler that waited on a threading.Event in a tight loop."""
    import signal
    for i in range(10):
        sched = procs.start("scheduler", "--interval", "1ms", name=f"s{i}")
        wait_until(lambda: "holds the lease" in open(sched.log_path).read(), timeout=20, message="lease")
        sched.send_signal(signal.SIGTERM)
        assert sched.wait(timeout=10) == 0


def test_entries_a_worker_took_are_pruned_from_its_inbox(store):
    s = assigned_to_w(store, ["a", "b"])
    assert len(store.get_record("inbox", "w")["entries"]) == 2
    store.put_record("instance", "w", instance("w", taken=2, queue=[{"id": "b", "seq": 2, "run": 1}],
                                               current={"id": "a", "seq": 1, "run": 1, "since": now_us()}))
    s.iteration()
    assert store.get_record("inbox", "w")["entries"] == []
