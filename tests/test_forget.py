"""Forgetting instances on both stores (issue 10): the scheduler deletes the
records of instances stopped or lost for longer than forget_after, after
their results are committed and their tasks rolled back; `instances
--forget NAME` does it by hand and refuses a live instance."""

import json
import os
import signal

from riaktq_cli.core import protocol, task as T
from riaktq_cli.api.inputs import make_task
from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import PartialUpdate
from riaktq_cli.scheduler.events import EventSink
from riaktq_cli.scheduler.iteration import Scheduler
from tests.conftest import wait_until

HOUR_US = 3600 * 1_000_000


def lines(stream):
    return [line for line in stream.decode().splitlines() if line.strip()]


def record(name, heartbeat, status="idle", outbox=(), taken=0, current=None):
    return {"name": name, "tags": [], "heartbeat": heartbeat, "status": status, "taken": taken, "queue": [],
            "current": current, "outbox": list(outbox), "token": f"tok-{name}"}


def nextup_on(store, task_id, name):
    """A task assigned to `name` (run 1) and the inbox entry it was sent as."""
    assert store.create_tasks([make_task(task_id, b"x")]) == [None]
    store.update_tasks([task_id], lambda t: T.assign(t, name))
    entry = {"seq": 1, "id": task_id, "run": 1, "inc": store.get_task(task_id).inc, "in": "", "tags": []}
    store.put_record("inbox", name, {**protocol.empty_inbox(), "seq": 1, "token": f"tok-{name}"})
    return entry


def done_result(entry):
    return protocol.make_result(entry, "done", b"finished before it died", now_us() - HOUR_US, 5)


def scheduler(store, forget_after=1.0):
    return Scheduler(store, instance_timeout=2.0, prefetch=1, events=EventSink(None), forget_after=forget_after)


def test_the_scheduler_forgets_only_what_it_has_finished_with(store):
    long_ago = now_us() - HOUR_US
    for n in range(60):
        store.put_record("instance", f"old-{n}", record(f"old-{n}", long_ago, status="stopped"))
        store.put_record("inbox", f"old-{n}", protocol.empty_inbox())
    store.put_record("instance", "live", record("live", now_us()))
    store.put_record("instance", "just-stopped", record("just-stopped", now_us(), status="stopped"))
    entry = nextup_on(store, "last-words", "dead")
    store.put_record("instance", "dead", record("dead", long_ago, status="busy", taken=1,
                                                outbox=[done_result(entry)]))
    s = scheduler(store)
    plain_update = store.update_tasks

    def commit_fails(ids, change):
        raise PartialUpdate("the commit write got no answer", [], list(ids))
    store.update_tasks = commit_fails
    s.iteration()
    store.update_tasks = plain_update
    left = set(store.list_records("instance"))
    assert left == {"live", "just-stopped", "dead"}        # 60 forgotten; dead's result not committed yet
    assert store.get_record("inbox", "old-7") is None
    s.iteration()                                          # commits; the task named dead at the start
    assert "dead" in store.list_records("instance")
    s.iteration()
    assert set(store.list_records("instance")) == {"live", "just-stopped"}
    assert store.get_record("inbox", "dead") is None and set(s.inboxes.names()) <= {"live", "just-stopped"}
    task = store.get_task("last-words")
    assert (task.status, task.out, task.run) == ("done", b"finished before it died", 1)


def test_instances_forget_by_hand(procs, store):
    long_ago = now_us() - HOUR_US
    store.put_record("instance", "alive", record("alive", now_us()))
    entry = nextup_on(store, "result-left", "gone")
    store.put_record("instance", "gone", record("gone", long_ago, taken=1, outbox=[done_result(entry)]))
    nextup_on(store, "still-assigned", "gone-too")
    store.put_record("instance", "gone-too", record("gone-too", long_ago, taken=1, current={
        "id": "still-assigned", "seq": 1, "run": 1, "inc": store.get_task("still-assigned").inc, "since": long_ago}))

    refused = procs.run("instances", "--forget", "alive", "--forget", "gone", "--forget", "gone-too",
                        "--forget", "nobody")
    assert refused.returncode == 1
    assert lines(refused.stderr) == [
        "riaktq: error: instance 'alive' is live (its heartbeat is fresh); stop it first",
        "riaktq: error: instance 'gone' still has 1 result(s) to commit and 1 task(s) to roll back: the"
        " scheduler does that at its next iteration (is one running?); try again then",
        "riaktq: error: instance 'gone-too' still has 1 task(s) to roll back: the scheduler does that at its"
        " next iteration (is one running?); try again then",
        "riaktq: error: no instance 'nobody'"]
    assert set(store.list_records("instance")) == {"alive", "gone", "gone-too"}

    assert procs.run("scheduler", "--once").returncode == 0    # forget_after 1d: it forgets nothing itself
    assert set(store.list_records("instance")) == {"alive", "gone", "gone-too"}
    forgot = procs.run("instances", "--forget", "gone", "--forget", "gone-too")
    assert forgot.returncode == 0, forgot.stderr
    assert lines(forgot.stderr) == ["riaktq: forgot instance gone", "riaktq: forgot instance gone-too"]
    assert set(store.list_records("instance")) == {"alive"} and store.get_record("inbox", "gone") is None
    assert store.get_task("result-left").status == "done"
    assert (store.get_task("still-assigned").status, store.get_task("still-assigned").lost) == ("todo", 1)
    both = procs.run("instances", "alive", "--forget", "alive")
    assert both.returncode == 2 and len(lines(both.stderr)) == 1


def test_a_lost_instance_is_forgotten_with_nothing_lost_through_a_kill_9(procs, store, tmp_path):
    fast = ("--prefetch", "2", "--forget-after", "1s")
    first = procs.start("scheduler", *fast, name="scheduler")
    doomed = procs.start("worker", "--handler", "sleep", "--name", "doomed", name="doomed")
    wait_until(lambda: store.get_record("instance", "doomed"), timeout=60, message="doomed up")
    batch = tmp_path / "tasks.jsonl"
    batch.write_text(json.dumps({"id": "quick", "in": "0.5", "priority": 1}) + "\n" +
                     json.dumps({"id": "slow", "in": "6"}) + "\n")
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    wait_until(lambda: (store.get_record("instance", "doomed") or {}).get("current"), timeout=60,
               message="doomed running quick")
    os.kill(first.pid, signal.SIGKILL)             # nobody commits quick's result now
    first.wait()

    def running_slow_with_quick_in_its_outbox():
        rec = store.get_record("instance", "doomed")
        return (rec.get("current") or {}).get("id") == "slow" and [r["id"] for r in rec["outbox"]] == ["quick"]
    wait_until(running_slow_with_quick_in_its_outbox, timeout=60, message="quick finished, slow running")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    procs.start("worker", "--handler", "sleep", "--name", "rescuer", name="rescuer")
    procs.start("scheduler", *fast, name="scheduler-2")
    wait_until(lambda: store.get_record("instance", "doomed") is None, timeout=60, message="doomed forgotten")
    assert store.get_record("inbox", "doomed") is None
    quick = store.get_task("quick")
    assert (quick.status, quick.assignee, quick.run) == ("done", "doomed", 1)   # its result was committed
    wait_until(lambda: store.get_task("slow").status == "done", timeout=60, message="slow ran again")
    slow = store.get_task("slow")
    assert (slow.assignee, slow.lost) == ("rescuer", 1)
    rows = json.loads(procs.run("instances", "--format", "json").stdout)
    assert [row["name"] for row in rows] == ["rescuer"]
