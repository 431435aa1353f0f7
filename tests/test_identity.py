"""Issue 18, defects 1 and 2 (both stores): epochs only grow, and a task
opened again under a removed id is a task of its own.

1. A scheduler killed with -9, its successor stopped cleanly, a third one
   started: the third must take an epoch above the second's, or the worker
   (which ignores inboxes of an older epoch than it has seen) never runs
   another task.
2. `rm X` + `open X` while the old X runs: the old run's result must not be
   committed to the new X (results carry the incarnation stamp made at open).
"""

import signal

from riaktq_cli import Queue
from riaktq_cli.core import protocol
from riaktq_cli.core import task as T
from riaktq_cli.scheduler.events import EventSink
from riaktq_cli.scheduler.lease import Lease
from riaktq_cli.scheduler.iteration import Scheduler
from riaktq_cli.store.base import LEASE_NAME, SCHEDULER
from tests.conftest import wait_until


def status(store, task_id):
    task = store.get_task(task_id)
    return task.status if task is not None else None


def test_a_clean_restart_after_a_failover_keeps_the_queue_moving(procs, store):
    procs.start("worker", "--handler", "echo", "--name", "w1", name="worker")
    first = procs.start("scheduler", name="first")
    assert procs.run("open", "t1", "--in", "a").returncode == 0
    wait_until(lambda: status(store, "t1") == "done", message="t1 done under the first scheduler")
    assert store.get_task("t1").inc is not None          # `open`'s fast lane stamps it too
    procs.stop(first, signal.SIGKILL)                 # lease left to expire
    second = procs.start("scheduler", name="second")
    assert procs.run("open", "t2", "--in", "b").returncode == 0
    wait_until(lambda: status(store, "t2") == "done", message="t2 done after the failover")
    assert store.get_record("instance", "w1")["epoch"] == 2
    assert procs.stop(second) == 0                    # a routine restart: releases the lease
    procs.start("scheduler", name="third")
    assert procs.run("open", "t3", "--in", "c").returncode == 0
    wait_until(lambda: status(store, "t3") == "done", timeout=20, message="t3 done after a clean restart")
    assert store.get_record("instance", "w1")["epoch"] == 3


def test_a_released_lease_keeps_its_epoch_and_a_deleted_one_counts_from_the_workers(store):
    from riaktq_cli.scheduler.lease import released
    lease = Lease(store, "a", ttl=5.0, settle=0.0)
    assert lease.attempt() and lease.epoch == 1
    lease.release()
    (copy,) = store.read_lease()
    assert (copy["owner"], copy["epoch"], copy["expires"]) == ("a", 1, 0)
    assert released(store.read_lease(), "b") is None          # not b's to let go
    lease = Lease(store, "b", ttl=5.0, settle=0.0)
    assert lease.attempt() and lease.epoch == 2
    # A lease document deleted (by an older riaktq's release, or by hand)
    # while the workers have seen epoch 7: the next takeover counts from 7.
    store.delete_record(SCHEDULER, LEASE_NAME)
    store.put_record("instance", "w", {"name": "w", "epoch": 7, "heartbeat": 0, "status": "stopped"})
    s = Scheduler(store, instance_timeout=2.0, prefetch=1, events=EventSink(None), owner="c")
    s.run(0.05, _Set(), once=True)
    assert s.lease.epoch == 8


class _Set:
    """A stop flag that is never set (run(once=True) returns by itself)."""

    def is_set(self):
        return False

    def wait(self, timeout):
        return False


def test_a_task_opened_again_under_a_removed_id_gets_its_own_result(procs, store, config_file):
    """The old run (2 s) is still under way when X is removed and opened
    again; prefetch 2 lets the new X be assigned to the same instance
    (again run 1) before the old run ends. Its result is the new input."""
    procs.start("worker", "--handler", "sleep", "--name", "w1", name="worker")
    procs.start("scheduler", "--prefetch", "2", name="scheduler")
    with Queue.from_config(config_file) as queue:
        queue.open("X", b"2")
        wait_until(lambda: (store.get_record("instance", "w1") or {}).get("current"), message="X running")
        old = store.get_task("X")
        queue.rm("X")
        queue.open("X", b"0.1")
        new = store.get_task("X")
        assert new.inc != old.inc and new.inc is not None
        (done,) = queue.wait("X", timeout=30)
    assert (done.status, done.out, done.run) == ("done", b"0.1", 1)


def test_a_result_without_a_stamp_commits_only_to_a_task_without_one(store):
    """Records from before stamps (an upgrade with tasks in flight): an
    entry, a result and a task without `inc` still match by (id, run); a
    stamped task never takes an unstamped result."""
    store.create_tasks([T.Task(id="legacy", in_=b"x", cat=1, rev=1), T.new_task("stamped", b"y", now=2)])
    store.put_record("instance", "w", {"name": "w", "heartbeat": 0, "status": "idle", "taken": 0,
                                       "queue": [], "current": None, "outbox": []})
    s = Scheduler(store, instance_timeout=3600.0, prefetch=2, events=EventSink(None))
    store.put_record("instance", "w", dict(store.get_record("instance", "w"), heartbeat=_now()))
    s.iteration()
    entries = store.get_record("inbox", "w")["entries"]
    assert {e["id"]: e["inc"] for e in entries} == {"legacy": None, "stamped": store.get_task("stamped").inc}
    outbox = [protocol.make_result(dict(e, inc=None), "done", e["id"].encode(), 1, 1) for e in entries]
    store.put_record("instance", "w", dict(store.get_record("instance", "w"), heartbeat=_now(), taken=2,
                                           outbox=outbox))
    s.iteration()
    assert status(store, "legacy") == "done" and status(store, "stamped") == "nextup"
    # an inbox of an older scheduler lists [id, run]: read as unstamped runs
    assert protocol.committed_keys({"committed": [["legacy", 1]]}) == {("legacy", 1, None)}


def _now():
    from riaktq_cli.core.clock import now_us
    return now_us()
