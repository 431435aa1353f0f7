"""`riaktq cancel` on both stores (issue 10): a todo task, a task still in
its instance's inbox, one queued in the worker and one running (stopped at
once), a lost instance, a race with the assign, a selection by status, tag
and age, and a kill -9 of the scheduler between the cancel and its end."""

import json
import os
import signal
import time

from riaktq_cli import protocol, task as T
from riaktq_cli.api_input import make_task
from riaktq_cli.clock import now_us
from riaktq_cli.events import EventSink
from riaktq_cli.scheduler import Scheduler
from tests.conftest import wait_until

DAY_US = 86400 * 1_000_000


def opened(store, *ids, days_old=0, **options):
    tasks = [make_task(i, b"x", now=now_us() - days_old * DAY_US + n, **options) for n, i in enumerate(ids)]
    assert store.create_tasks(tasks) == [None] * len(tasks)


def lines(stream):
    return [line for line in stream.decode().splitlines() if line.strip()]


def instance(name, taken=0, heartbeat=None, **fields):
    return {"name": name, "tags": [], "heartbeat": heartbeat or now_us(), "status": "idle", "taken": taken,
            "queue": [], "current": None, "outbox": [], "token": None, **fields}


def scheduler(store, prefetch=2):
    return Scheduler(store, instance_timeout=2.0, prefetch=prefetch, events=EventSink(None))


def log_of(proc):
    with open(proc.log_path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


# --- without a scheduler ---------------------------------------------------------

def test_cancel_a_todo_task_now_and_refuse_missing_or_finished_ids(procs, store):
    opened(store, "a", "b", "c", "d")
    store.update_tasks(["d"], lambda t: T.close(T.assign(t, "w1"), "w1", T.DONE, b"ok", now_us(), 1)[0])
    result = procs.run("cancel", "a", "ghost", "d", "b", "--reason", "wrong input")
    assert result.returncode == 1
    assert lines(result.stdout) == ["a\tfailed", "b\tfailed"]
    errors = [line for line in lines(result.stderr) if "error" in line]
    assert errors == ["riaktq: error: no task 'ghost'", "riaktq: error: task 'd' is already done"]
    for task_id in "ab":
        task = store.get_task(task_id)
        assert (task.status, task.out, task.cancel) == ("failed", b"cancelled: wrong input", "wrong input")
    assert store.get_task("d").status == "done"
    plain = procs.run("cancel", "c")
    assert plain.returncode == 0 and store.get_task("c").out == b"cancelled"
    again = procs.run("cancel", "c")
    assert again.returncode == 1 and "already failed" in again.stderr.decode()


def test_cancel_selects_by_status_tag_and_age_with_a_dry_run(procs, store):
    opened(store, "old-gpu-1", "old-gpu-2", days_old=3, tags=["gpu"])
    opened(store, "old-cpu", days_old=3)
    opened(store, "new-gpu", tags=["gpu"])
    opened(store, "old-gpu-running", days_old=3, tags=["gpu"])
    store.update_tasks(["old-gpu-running"], lambda t: T.assign(t, "w1"))
    dry = procs.run("cancel", "--status", "todo", "--tag", "gpu", "--age", "1d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(lines(dry.stdout)) == ["old-gpu-1\twould fail", "old-gpu-2\twould fail"]
    assert "would cancel 2 task(s)" in dry.stderr.decode()
    assert {t.status for t in store.get_tasks(["old-gpu-1", "old-gpu-2"]).values()} == {"todo"}

    every = procs.run("cancel", "--tag", "gpu", "--age", "1d", "--reason", "gpu pool retired")
    assert every.returncode == 0, every.stderr
    assert sorted(lines(every.stdout)) == ["old-gpu-1\tfailed", "old-gpu-2\tfailed", "old-gpu-running\tcancelling"]
    tasks = store.get_tasks(["old-gpu-1", "old-cpu", "new-gpu", "old-gpu-running"])
    assert [tasks[i].status for i in ("old-gpu-1", "old-cpu", "new-gpu", "old-gpu-running")] == \
        ["failed", "todo", "todo", "nextup"]
    assert tasks["old-gpu-running"].cancel == "gpu pool retired"
    for args in ([], ["a", "--status", "todo"], ["--status", "done"], ["a", "--reason", "two\nlines"]):
        refused = procs.run("cancel", *args)
        assert refused.returncode == 2 and len(lines(refused.stderr)) == 1, (args, refused.stderr)


# --- the scheduler's part, one iteration at a time ------------------------------------

def test_a_task_still_in_the_inbox_is_withdrawn_and_fails(procs, store):
    opened(store, "first", "second")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    assert [e["id"] for e in store.get_record("inbox", "w")["entries"]] == ["first", "second"]
    assert lines(procs.run("cancel", "second", "--reason", "not needed").stdout) == ["second\tcancelling"]
    summary = s.iteration()
    inbox = store.get_record("inbox", "w")
    assert [e["id"] for e in inbox["entries"]] == ["first"]
    assert inbox["cancel"] == [["second", 1, 2]]   # in case the worker read its inbox just before
    task = store.get_task("second")
    assert (task.status, task.out, summary["rollback"]) == ("failed", b"cancelled: not needed", 0)
    assert store.get_task("first").status == "nextup"
    # the worker shows it took seq 2 and holds nothing of it: the cancel item goes
    store.put_record("instance", "w", instance("w", taken=2, queue=[{"id": "first", "seq": 1, "run": 1}]))
    s.iteration()
    assert store.get_record("inbox", "w")["cancel"] == []


def test_a_cancelled_task_whose_instance_is_lost_fails_instead_of_going_back(procs, store):
    opened(store, "orphan")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    since = now_us()
    store.put_record("instance", "w", instance("w", taken=1, heartbeat=now_us() - 10_000_000,
                                               current={"id": "orphan", "seq": 1, "run": 1, "since": since}))
    assert procs.run("cancel", "orphan").returncode == 0
    s.iteration()
    task = store.get_task("orphan")
    assert (task.status, task.out, task.lost) == ("failed", b"cancelled", 0)
    assert store.get_tasks(["orphan"])["orphan"].status == "failed"


def test_a_result_of_a_cancelled_run_closes_it_failed_without_a_restart(procs, store):
    opened(store, "retrying", retry=3)
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    entry = store.get_record("inbox", "w")["entries"][0]
    store.put_record("instance", "w", instance("w", taken=1, current={**entry, "since": now_us()}))
    assert lines(procs.run("cancel", "retrying").stdout) == ["retrying\tcancelling"]
    s.iteration()
    assert store.get_record("inbox", "w")["cancel"] == [["retrying", 1, 1]]
    # the worker killed it and reports the run failed
    store.put_record("instance", "w", instance("w", taken=1, outbox=[
        protocol.make_result(entry, "failed", b"cancelled", now_us(), 5)]))
    s.iteration()
    task = store.get_task("retrying")
    assert (task.status, task.retry, task.out) == ("failed", 3, b"cancelled")


def test_a_cancel_racing_the_assign_wins(procs, store):
    """The scheduler has read the task todo; the cancel writes it before the
    assign does. SQLite: the assign sees failed and skips it. Riak: both
    writes land as siblings of equal rev; the merge takes the further
    status, failed."""
    opened(store, "raced")
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    plain_update = store.update_tasks

    def cancel_first(ids, change):
        if "raced" in ids and store.get_task("raced").status == "todo":
            assert procs.run("cancel", "raced", "--reason", "race").returncode == 0
        return plain_update(ids, change)
    store.update_tasks = cancel_first
    s.iteration()
    store.update_tasks = plain_update
    task = store.get_task("raced")
    assert (task.status, task.out) == ("failed", b"cancelled: race")
    s.iteration()
    assert store.get_task("raced").status == "failed"


# --- real processes --------------------------------------------------------------------

def start_pipeline(procs, store, tmp_path, events="events.jsonl", prefetch="3"):
    scheduler_proc = procs.start("scheduler", "--prefetch", prefetch, "--events", str(tmp_path / events),
                                 name="scheduler")
    worker = procs.start("worker", "--handler", "sleep", "--name", "w1", name="w1")
    wait_until(lambda: store.get_record("instance", "w1"), timeout=60, message="worker up")
    return scheduler_proc, worker


def running(store, task_id):
    current = (store.get_record("instance", "w1") or {}).get("current") or {}
    return current.get("id") == task_id


def test_cancel_a_running_and_a_queued_task(procs, store, tmp_path):
    start_pipeline(procs, store, tmp_path)
    batch = tmp_path / "tasks.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "in": s, "priority": p}) + "\n"
                             for i, s, p in (("long", "60", 3), ("queued", "60", 2), ("after", "0.1", 1))))
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    wait_until(lambda: running(store, "long") and len(store.get_record("instance", "w1")["queue"]) == 2,
               timeout=60, message="long running, two queued in the worker")
    # queued: already sent to the handler process, which drops its queue; the
    # task after it is sent again
    result = procs.run("cancel", "queued", "--reason", "operator")
    assert result.returncode == 0 and lines(result.stdout) == ["queued\tcancelling"]
    wait_until(lambda: store.get_task("queued").status == "failed", timeout=10, message="queued withdrawn")
    assert running(store, "long") and store.get_task("after").status == "nextup"
    started = time.monotonic()
    assert lines(procs.run("cancel", "long", "--reason", "operator").stdout) == ["long\tcancelling"]
    wait_until(lambda: store.get_task("long").status == "failed", timeout=10, message="long stopped")
    stopped_after = time.monotonic() - started
    wait_until(lambda: store.get_task("after").status == "done", timeout=30, message="the next task ran")
    tasks = store.get_tasks(["long", "queued", "after"])
    assert (tasks["long"].out, tasks["queued"].out) == (b"cancelled: operator", b"cancelled: operator")
    assert tasks["long"].laf < 30_000_000 and tasks["after"].out == b"0.1"
    assert tasks["after"].run == 1     # sent again by the worker, not handed back and reassigned
    worker_log = log_of(procs.procs[1])
    assert "w1 failed long in" in worker_log and "cancelled" in worker_log
    assert "returned queued" in worker_log and "done queued" not in worker_log
    print(f"running task stopped {stopped_after:.2f}s after `cancel` returned")


def test_cancel_survives_a_kill_9_of_the_scheduler(procs, store, tmp_path):
    first, _worker = start_pipeline(procs, store, tmp_path, events="ev1.jsonl")
    assert procs.run("open", "slow", "--in", "60").returncode == 0
    wait_until(lambda: running(store, "slow"), timeout=60, message="slow running")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert lines(procs.run("cancel", "slow").stdout) == ["slow\tcancelling"]
    assert store.get_task("slow").status == "nextup"       # nobody has acted on the mark yet
    procs.start("scheduler", "--prefetch", "3", "--events", str(tmp_path / "ev2.jsonl"), name="scheduler-2")
    wait_until(lambda: store.get_task("slow").status == "failed", timeout=30, message="slow stopped by the successor")
    task = store.get_task("slow")
    assert task.out == b"cancelled" and task.laf < 30_000_000
    assert procs.run("open", "next", "--in", "0").returncode == 0
    wait_until(lambda: store.get_task("next").status == "done", timeout=30, message="the worker goes on")
