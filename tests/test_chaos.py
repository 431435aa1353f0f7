"""Chaos with poison: random kill -9 of worker children, supervisors and the
scheduler while some tasks crash their handler process and others hang past
their time limit (issue 8, "what it must show" 2).

Every task must end `done` or `failed` with a reason, each task's final
close must come from exactly one run, and every task must have a close
event (events are at least once: repeats of one run are allowed).
"""

import collections
import json
import os
import random
import signal
import time

from tests.conftest import ROOT, read_events, wait_until

HANDLER = str(ROOT / "tests" / "handlers_for_tests" / "crash.py")


def test_chaos_with_crashing_and_hanging_tasks(store, procs, tmp_path):
    rnd = random.Random(int(os.environ.get("RIAKTQ_CHAOS_SEED", "11")))
    lines = []
    for i in range(80):
        lines.append({"id": f"ok-{i}", "in": "sleep 0.05"})
    for i in range(4):
        lines.append({"id": f"crash-{i}", "in": "exit 5"})
    for i in range(4):
        lines.append({"id": f"hang-{i}", "in": "sleep 3600", "time_limit": "1s"})
    rnd.shuffle(lines)
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert procs.run("open", "--batch", str(batch)).returncode == 0, "batch refused"

    events = [tmp_path / "ev0.jsonl"]

    def start_scheduler():
        return procs.start("scheduler", "--interval", "100ms", "--events", str(events[-1]), name="sched")

    def start_supervisor(prefix):
        return procs.start("worker", "--handler", HANDLER, "--count", "2", "--prefix", prefix,
                           "--shutdown-grace", "1s", name=f"sup-{prefix}")

    scheduler = start_scheduler()
    supervisors = {p: start_supervisor(p) for p in ("a", "b")}
    wait_until(lambda: len(store.list_records("instance")) == 4, timeout=30, message="workers up")
    for _ in range(8):
        time.sleep(0.4 + rnd.random() * 0.4)
        roll = rnd.random()
        if roll < 0.25:
            os.kill(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
            events.append(tmp_path / f"ev{len(events)}.jsonl")
            scheduler = start_scheduler()
        elif roll < 0.45:
            prefix = rnd.choice(sorted(supervisors))
            os.kill(supervisors[prefix].pid, signal.SIGKILL)
            supervisors[prefix].wait()
            supervisors[prefix] = start_supervisor(prefix)
        else:
            records = sorted(store.list_records("instance").values(), key=lambda r: r["name"])
            victim = rnd.choice(records)
            try:
                os.kill(victim["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass

    ids = [line["id"] for line in lines]

    def finished():
        tasks = store.get_tasks(ids)
        return all(t.status in ("done", "failed") for t in tasks.values()) and len(tasks) == len(ids)
    wait_until(finished, timeout=240, interval=0.5, message="every task finished after chaos")

    tasks = store.get_tasks(ids)
    for task_id, task in tasks.items():
        if task_id.startswith("ok-"):
            assert task.status == "done" and task.out == b"sleep 0.05", task
        elif task_id.startswith("crash-"):
            assert task.status == "failed" and task.out.startswith(b"lost 3 times"), task
        else:
            assert task.status == "failed" and b"time limit" in task.out, task
    all_events = [e for path in events for e in read_events(path)]
    runs_closed = collections.defaultdict(set)
    for e in all_events:
        if e["transition"] == "close":
            runs_closed[e["id"]].add(e["run"])
    missing = set(ids) - set(runs_closed)
    assert not missing, f"no close event for {sorted(missing)}"
    twice = {i: r for i, r in runs_closed.items() if len(r) != 1}
    assert not twice, f"closed by more than one run: {twice}"
    for task_id, task in tasks.items():
        assert runs_closed[task_id] == {task.run}
