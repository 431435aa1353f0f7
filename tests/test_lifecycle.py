"""The whole task lifecycle with real processes, on both stores.

Each test starts `riaktq scheduler` and `riaktq worker` processes with short
timings (interval 100ms, instance timeout 2s, heartbeat 200ms) and judges
the outcome from the store and from the scheduler's `--events` JSON lines.
"""

import base64
import collections
import json
import os
import re
import signal
import time

import pytest

from tests.conftest import read_events, wait_until


def count(store, status):
    return store.count_by_status()[status]


def closes(events):
    """How many runs of each task were closed. Events are at least once (a
    scheduler that takes over emits again the closes it cannot tell were
    emitted), so a repeat of one run's close is one close."""
    return collections.Counter(task_id for task_id, _ in
                               {(e["id"], e["run"]) for e in events if e["transition"] == "close"})


def log_text(proc):
    with open(proc.log_path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def runs_per_task(procs):
    """How often each task ran, from the workers' '<name> done <id> in' log lines."""
    runs = collections.Counter()
    for proc in procs.procs:
        for m in re.finditer(r" (?:done|failed) (\S+) in ", log_text(proc)):
            runs[m.group(1)] += 1
    return runs


def test_500_tasks_through_4_workers(store, procs, tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": f"task-{i}", "in": f"payload {i} ü"}) + "\n" for i in range(500)))
    result = procs.run("open", "--batch", str(batch))
    assert result.returncode == 0, result.stderr
    assert count(store, "todo") == 500
    events = tmp_path / "events.jsonl"
    procs.start("worker", "--handler", "echo", "--count", "4", name="workers")
    # all four up before the first iteration: with prefetch auto, three
    # workers can drain the queue before a slow-starting fourth registers
    wait_until(lambda: len(store.list_records("instance")) == 4, timeout=60, message="4 workers up")
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    wait_until(lambda: count(store, "done") == 500, timeout=120, interval=0.5, message="500 done")
    tasks = store.get_tasks([f"task-{i}" for i in range(500)])
    assert all(task.out == task.in_ == f"payload {i} ü".encode() for i, task in
               ((int(k.split("-")[1]), v) for k, v in tasks.items()))
    from riaktq_cli.worker.supervisor import short_host
    # --count without --prefix: HANDLER-HOST-i, so two machines never share names
    assert {task.assignee for task in tasks.values()} == {f"echo-{short_host()}-{i}" for i in range(1, 5)}
    wait_until(lambda: len(closes(read_events(events))) == 500, timeout=10, message="500 close events")
    per_task = closes(read_events(events))
    assert set(per_task.values()) == {1}, "a task was closed more than once"


def test_kill_9_worker_mid_task_rolls_back_to_another(store, procs, tmp_path):
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    doomed = procs.start("worker", "--handler", "sleep", "--name", "doomed", name="doomed")
    wait_until(lambda: store.get_record("instance", "doomed"), message="doomed registered")
    # one batch, so that the slow task is still running when the test looks
    # (five `open` processes took longer than it on a loaded machine)
    batch = tmp_path / "tasks.jsonl"
    batch.write_text(json.dumps({"id": "slow", "in": "4", "priority": 1}) + "\n" +
                     "".join(json.dumps({"id": f"quick-{i}", "in": "0"}) + "\n" for i in range(5)))
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    wait_until(lambda: (store.get_record("instance", "doomed") or {}).get("current", {}) or {},
               message="doomed running a task")
    running = store.get_record("instance", "doomed")["current"]["id"]
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    procs.start("worker", "--handler", "sleep", "--name", "rescuer", name="rescuer")
    ids = ["slow"] + [f"quick-{i}" for i in range(5)]
    wait_until(lambda: all(t.status == "done" for t in store.get_tasks(ids).values()), timeout=60,
               message="all tasks done")
    assert store.get_task(running).assignee == "rescuer"
    evs = read_events(events)
    assert any(e["transition"] == "rollback" and e["id"] == running for e in evs)
    assert set(closes(evs).values()) == {1} and set(closes(evs)) == set(ids)


def test_kill_9_scheduler_then_a_new_one_commits_what_workers_finished(store, procs, tmp_path):
    ids = [f"job-{i}" for i in range(30)]
    for task_id in ids:
        procs.run("open", task_id, "--in", "0.1")
    ev1, ev2 = tmp_path / "ev1.jsonl", tmp_path / "ev2.jsonl"
    first = procs.start("scheduler", "--interval", "100ms", "--prefetch", "2", "--events", str(ev1), name="s1")
    procs.start("worker", "--handler", "sleep", "--count", "3", name="workers")
    wait_until(lambda: count(store, "done") >= 5, timeout=60, message="some done")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()

    def outbox_waiting():
        return sum(len(r.get("outbox", [])) for r in store.list_records("instance").values())
    waiting = wait_until(outbox_waiting, timeout=10, message="results waiting in outboxes")
    done_before = count(store, "done")
    procs.start("scheduler", "--interval", "100ms", "--prefetch", "2", "--events", str(ev2), name="s2")
    wait_until(lambda: count(store, "done") == len(ids), timeout=90, interval=0.2, message="all done")
    assert waiting >= 1 and done_before < len(ids)
    all_closes = closes(read_events(ev1) + read_events(ev2))
    assert set(all_closes) == set(ids) and set(all_closes.values()) == {1}
    wait_until(lambda: set(runs_per_task(procs)) == set(ids), timeout=5, message="worker logs")
    assert set(runs_per_task(procs).values()) == {1}, "a finished result was run again"


def test_failing_handler_restarts_then_fails(store, procs, tmp_path):
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    procs.start("worker", "--handler", "fail", "--name", "f1", name="f1")
    assert procs.run("open", "doomed", "--in", "disk on fire", "--retry", "2", "--priority", "3").returncode == 0
    wait_until(lambda: store.get_task("doomed").status == "failed", timeout=30, message="failed")
    task = store.get_task("doomed")
    assert (task.retry, task.priority) == (0, 1)
    assert task.out == b"TaskFailed: disk on fire"
    kinds = [e["transition"] for e in read_events(events) if e["id"] == "doomed"]
    assert kinds == ["assign", "restart", "assign", "restart", "assign", "close"]
    restarts = [e["task"]["priority"] for e in read_events(events) if e["transition"] == "restart"]
    assert restarts == [2, 1]


def test_tagged_task_waits_for_an_instance_with_the_tag(store, procs, tmp_path):
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "plain", name="plain")
    assert procs.run("open", "render", "--in", "scene", "--tag", "gpu").returncode == 0
    assert procs.run("open", "plain-task", "--in", "x").returncode == 0
    wait_until(lambda: store.get_task("plain-task").status == "done", message="untagged done")
    time.sleep(0.5)
    assert store.get_task("render").status == "todo"
    procs.start("worker", "--handler", "echo", "--name", "gpu-box", "--tag", "gpu", "--tag", "cuda", name="gpu")
    wait_until(lambda: store.get_task("render").status == "done", message="tagged done")
    assert store.get_task("render").assignee == "gpu-box"


def test_priority_then_creation_order_with_one_instance(store, procs, tmp_path):
    order = [("a", 0), ("b", 0), ("hi", 5), ("c", 0), ("neg", -1), ("hi2", 5)]
    for task_id, prio in order:
        assert procs.run("open", task_id, "--in", task_id, "--priority", str(prio)).returncode == 0
    events = tmp_path / "events.jsonl"
    procs.start("worker", "--handler", "echo", "--name", "only", name="only")
    wait_until(lambda: store.get_record("instance", "only"), message="worker up")
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    wait_until(lambda: count(store, "done") == len(order), message="all done")
    assigned = [e["id"] for e in read_events(events) if e["transition"] == "assign"]
    assert assigned == ["hi", "hi2", "a", "b", "c", "neg"]


def test_non_utf8_input_round_trips(store, procs, tmp_path):
    data = bytes(range(256)) + b"\xff\xfe\x00"
    (tmp_path / "in.bin").write_bytes(data)
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "e1", name="e1")
    result = procs.run("open", "bin", "--in-file", str(tmp_path / "in.bin"), "--wait", "--timeout", "30s")
    assert result.returncode == 0 and result.stdout == data
    view = json.loads(procs.run("get", "bin", "--format", "json").stdout)
    assert base64.b64decode(view["in"]["base64"]) == data and view["out"] == view["in"]


def test_open_wait_exit_codes(store, procs):
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    procs.start("worker", "--handler", "fail", "--name", "f", name="f")
    failed = procs.run("open", "x", "--in", "nope", "--wait", "--timeout", "30s")
    assert failed.returncode == 1 and failed.stdout == b"TaskFailed: nope"
    timeout = procs.run("open", "y", "--in", "a", "--tag", "nobody-has-this", "--wait", "--timeout", "300ms")
    assert timeout.returncode == 2 and b"still todo" in timeout.stderr


def test_two_schedulers_one_stands_by_and_takes_over(store, procs, tmp_path):
    first = procs.start("scheduler", "--interval", "100ms", name="s1")
    wait_until(lambda: "holds the lease" in log_text(first), message="first holds the lease")
    second = procs.start("scheduler", "--interval", "100ms", name="s2")
    wait_until(lambda: "standing by" in log_text(second), message="second stands by")
    procs.start("worker", "--handler", "echo", "--name", "w", name="w")
    assert procs.run("open", "before", "--in", "1", "--wait", "--timeout", "30s").returncode == 0
    os.kill(first.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: "holds the lease" in log_text(second), timeout=10, interval=0.02, message="takeover")
    took = time.monotonic() - killed_at
    assert took < 2.0, f"took over after {took:.2f}s, instance_timeout is 2s"
    assert procs.run("open", "after", "--in", "2", "--wait", "--timeout", "30s").returncode == 0


def test_sigterm_finishes_the_task_at_hand_and_flushes(store, procs, tmp_path):
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    worker = procs.start("worker", "--handler", "sleep", "--name", "w", name="w")
    procs.run("open", "long", "--in", "1.5")
    wait_until(lambda: (store.get_record("instance", "w") or {}).get("current"), message="running")
    assert procs.stop(worker, signal.SIGTERM) == 0
    record = store.get_record("instance", "w")
    assert record["status"] == "stopped"
    wait_until(lambda: store.get_task("long").status == "done", timeout=10, message="committed after exit")
    assert store.get_task("long").out == b"1.5"


def test_supervisor_restarts_a_dead_child(store, procs):
    sup = procs.start("worker", "--handler", "echo", "--count", "2", "--prefix", "kid", name="sup")
    wait_until(lambda: len(store.list_records("instance")) == 2, message="two children")
    pid = store.get_record("instance", "kid-1")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: store.get_record("instance", "kid-1")["pid"] != pid, timeout=15, message="restart")
    assert procs.stop(sup, signal.SIGTERM) == 0
    assert {r["status"] for r in store.list_records("instance").values()} == {"stopped"}


def test_random_kill_9s_lose_nothing_and_close_nothing_twice(store, procs, tmp_path):
    """Chaos: for several seconds, kill -9 a random worker child or the
    scheduler every few hundred ms (the supervisor restarts workers; a new
    scheduler is started by hand). Every task still ends done, once."""
    import random
    rnd = random.Random(int(os.environ.get("RIAKTQ_CHAOS_SEED", "7")))
    n = 120
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": f"c{i}", "in": "0.05"}) + "\n" for i in range(n)))
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    events = [tmp_path / "ev0.jsonl"]
    scheduler = procs.start("scheduler", "--interval", "100ms", "--prefetch", "2", "--events", str(events[0]),
                            name="sched")
    procs.start("worker", "--handler", "sleep", "--count", "3", "--prefix", "chaos", name="workers")
    wait_until(lambda: len(store.list_records("instance")) == 3, message="workers up")
    for _ in range(8):
        time.sleep(0.4 + rnd.random() * 0.4)
        if rnd.random() < 0.3:
            os.kill(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
            events.append(tmp_path / f"ev{len(events)}.jsonl")
            scheduler = procs.start("scheduler", "--interval", "100ms", "--prefetch", "2",
                                    "--events", str(events[-1]), name="sched")
        else:
            victim = rnd.choice(sorted(store.list_records("instance").values(), key=lambda r: r["name"]))
            try:
                os.kill(victim["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    wait_until(lambda: count(store, "done") == n, timeout=120, interval=0.3, message="all done after chaos")
    all_events = [e for path in events for e in read_events(path)]
    per_task = closes(all_events)
    assert set(per_task) == {f"c{i}" for i in range(n)} and set(per_task.values()) == {1}
