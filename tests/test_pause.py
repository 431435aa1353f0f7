"""`riaktq pause` / `riaktq resume` on both stores (issue 10): work in
flight finishes, nothing new is assigned, the pause outlasts a kill -9 of
the scheduler, a paused tag holds back only the tasks needing it, and
`stats` and `instances` show it."""

import json
import os
import signal

from tests.conftest import wait_until


def lines(stream):
    return [line for line in stream.decode().splitlines() if line.strip()]


def pause_of(procs):
    result = procs.run("stats", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["pause"]


def applied_by(procs, proc):
    """The scheduler `proc` has run an iteration (assign step included)
    under the pause as it is now."""
    pause = pause_of(procs)
    return pause is not None and pause["applied"] and pause["applied_by"].endswith(f":{proc.pid}")


def committed(store, name, task_id):
    """The scheduler has committed the task's result and told the worker so
    (the inbox that says it is written after that iteration's assign step):
    the task is done and the worker has dropped the result."""
    outbox = (store.get_record("instance", name) or {}).get("outbox", [])
    return store.get_task(task_id).status == "done" and all(r["id"] != task_id for r in outbox)


def current_id(store, name):
    return ((store.get_record("instance", name) or {}).get("current") or {}).get("id")


def test_pause_and_resume_with_work_in_flight_through_a_kill_9(procs, store, tmp_path):
    first = procs.start("scheduler", "--prefetch", "1", name="scheduler")
    procs.start("worker", "--handler", "sleep", "--name", "w1", name="w1")
    wait_until(lambda: store.get_record("instance", "w1"), timeout=60, message="worker up")
    assert procs.run("open", "in-flight", "--in", "2").returncode == 0
    wait_until(lambda: current_id(store, "w1") == "in-flight", timeout=60, message="in-flight running")

    paused = procs.run("pause")
    assert paused.returncode == 0 and "assignment paused: all tasks" in paused.stderr.decode()
    wait_until(lambda: applied_by(procs, first), timeout=30, message="the scheduler applied the pause")
    assert procs.run("open", "waiting", "--in", "0").returncode == 0
    # the task in flight finishes and is committed; the iteration that
    # committed it had a free slot and `waiting` in todo, and assigned nothing
    wait_until(lambda: committed(store, "w1", "in-flight"), timeout=60, message="in-flight committed")
    assert store.get_task("in-flight").status == "done"
    assert store.get_task("waiting").status == "todo"

    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = procs.start("scheduler", "--prefetch", "1", name="scheduler-2")
    wait_until(lambda: applied_by(procs, second), timeout=60, message="the successor applied the pause")
    assert store.get_task("waiting").status == "todo"

    stats = procs.run("stats")
    assert stats.returncode == 0 and "paused: all tasks" in stats.stdout.decode()
    rows = procs.run("instances", "--format", "json")
    assert [row["paused"] for row in json.loads(rows.stdout)] == ["all"]
    [note] = lines(rows.stderr)
    assert note.startswith("riaktq: assignment paused: all tasks") and "applied by the scheduler" in note

    resumed = procs.run("resume")
    assert resumed.returncode == 0 and lines(resumed.stderr) == ["riaktq: assignment resumed"]
    wait_until(lambda: store.get_task("waiting").status == "done", timeout=60, message="waiting ran")
    assert pause_of(procs) is None and procs.run("instances").stderr == b""


def test_a_paused_tag_holds_back_only_the_tasks_that_need_it(procs, store, tmp_path):
    scheduler = procs.start("scheduler", "--prefetch", "1", name="scheduler")
    procs.start("worker", "--handler", "sleep", "--name", "w1", "--tag", "gpu", name="w1")
    wait_until(lambda: store.get_record("instance", "w1"), timeout=60, message="worker up")
    assert procs.run("pause", "--tag", "gpu").returncode == 0
    wait_until(lambda: applied_by(procs, scheduler), timeout=30, message="the scheduler applied the pause")
    batch = tmp_path / "tasks.jsonl"
    # the gpu task comes first in the queue's order: unpaused, it would go first
    batch.write_text(json.dumps({"id": "render", "in": "0", "tags": ["gpu"], "priority": 5}) + "\n" +
                     json.dumps({"id": "plain", "in": "0"}) + "\n")
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    wait_until(lambda: store.get_task("plain").status == "done", timeout=60, message="the untagged task ran")
    assert store.get_task("render").status == "todo"
    [row] = json.loads(procs.run("instances", "--format", "json").stdout)
    assert row["paused"] == "gpu"
    assert "paused: tags gpu" in procs.run("stats").stdout.decode()
    assert procs.run("resume", "--tag", "gpu").returncode == 0
    wait_until(lambda: store.get_task("render").status == "done", timeout=60, message="the gpu task ran")


def test_pause_and_resume_keep_their_state_in_the_store(procs, store):
    assert procs.run("pause", "--tag", "a").returncode == 0
    assert procs.run("pause", "--tag", "b").returncode == 0
    state = pause_of(procs)
    assert (state["all"], state["tags"], state["applied"]) == (False, ["a", "b"], False)
    partly = procs.run("resume", "--tag", "a")
    assert partly.returncode == 0 and "still assignment paused: tasks needing b" in partly.stderr.decode()
    assert procs.run("pause").returncode == 0
    state = pause_of(procs)
    assert (state["all"], state["tags"]) == (True, ["b"]) and "@" in state["by"]
    assert procs.run("resume").returncode == 0
    assert pause_of(procs) is None
    bad = procs.run("pause", "--tag", "two words")
    assert bad.returncode == 2 and len(lines(bad.stderr)) == 1
    prometheus = procs.run("stats", "--format", "prometheus").stdout.decode()
    assert "riaktq_assignment_paused 0.0" in prometheus


def test_an_idle_iteration_reads_the_pause_at_most_once_a_second(store, backend, riak_server, monkeypatch):
    """On Riak an idle iteration is the three index reads it always was (the
    instance records; the nextup index, which also carries cancellation
    marks; the todo index, for the idle instance's free slot): the pause
    record adds one GET per READ_EVERY, not one per iteration."""
    import pytest

    from riaktq_cli import limits, pausing
    from riaktq_cli.clock import now_us
    from riaktq_cli.events import EventSink
    from riaktq_cli.scheduler import Scheduler
    if backend != "riak" or riak_server is None:
        pytest.skip("counts the requests the Riak test server sees")
    store.put_record("instance", "w", {"name": "w", "tags": [], "heartbeat": now_us() + 60_000_000,
                                       "status": "idle", "taken": 0, "queue": [], "current": None,
                                       "outbox": [], "token": None})
    s = Scheduler(store, instance_timeout=120.0, prefetch=1, events=EventSink(None))
    s.iteration()
    monkeypatch.setattr(pausing, "READ_EVERY", 3600.0)
    monkeypatch.setattr(limits, "READ_EVERY", 3600.0)   # its own record, read likewise (test_limits.py)
    riak_server.reset_counts()
    for _ in range(5):
        s.iteration()
    assert (riak_server.counts["get"], riak_server.counts["index"], riak_server.counts["put"]) == (0, 15, 0)
    monkeypatch.setattr(pausing, "READ_EVERY", 0.0)
    riak_server.reset_counts()
    s.iteration()
    assert (riak_server.counts["get"], riak_server.counts["index"]) == (1, 3)
