"""Issue 18, defect 5: long tasks pile up after a burst.

With prefetch auto, a worker that drained thousands of instant tasks had
learned a deep queue; when long tasks came next, all of them queued behind
it while a newcomer idled. An idle instance takes work before a busy one
queues more (assigning.py), and an idle spell puts a learned depth back to
one (prefetch.py; the arithmetic is in test_prefetch.py).
"""

import json
import re
import time

from riaktq_cli import task as transitions
from riaktq_cli.assigning import pick_tasks
from riaktq_cli.clock import now_us
from tests.conftest import wait_until
from tests.test_worker_reliability import log_text, registered


def test_an_idle_instance_gets_a_task_before_a_busy_one_queues_more(store):
    for i in range(3):
        store.create_task(transitions.new_task(f"t{i}", b"", now=now_us() + i))
    # "deep" learned a long queue and holds one task; "new" holds nothing, has one slot
    picks = pick_tasks(store, {"deep": 127, "new": 1}, {"deep": [], "new": []}, idle={"new"})
    assert picks == {"t0": "new", "t1": "deep", "t2": "deep"}
    # both idle: each gets one before either queues a second
    picks = pick_tasks(store, {"a": 127, "b": 1}, {"a": [], "b": []}, idle={"a", "b"})
    assert sorted(picks.values()) == ["a", "a", "b"] and picks["t1"] == "b"


def test_long_tasks_after_a_burst_spread_over_both_workers(store, procs, tmp_path):
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    first = procs.start("worker", "--handler", "sleep", "--name", "a", name="a")
    wait_until(lambda: registered(store, "a"), message="a up")
    burst = tmp_path / "burst.jsonl"
    burst.write_text("".join(json.dumps({"id": f"fast-{i}", "in": "0"}) + "\n" for i in range(300)))
    assert procs.run("open", "--batch", str(burst)).returncode == 0
    wait_until(lambda: store.count_by_status().get("done", 0) == 300, timeout=60, message="the burst done")
    second = procs.start("worker", "--handler", "sleep", "--name", "b", name="b")
    wait_until(lambda: registered(store, "b"), message="b up")
    # Time passing idle is the condition here: several scheduler rounds
    # (prefetch.IDLE_ROUNDS = 3; 20 at 100 ms, still 4 at 500 ms on a slow node).
    time.sleep(2.0)
    slow = tmp_path / "slow.jsonl"
    slow.write_text("".join(json.dumps({"id": f"slow-{i}", "in": "1"}) + "\n" for i in range(8)))
    assert procs.run("open", "--batch", str(slow)).returncode == 0
    wait_until(lambda: store.count_by_status().get("done", 0) == 308, timeout=60, message="the slow tasks done")
    ran = {name: len(re.findall(r" done slow-\d+ in ", log_text(proc))) for name, proc in (("a", first), ("b", second))}
    assert sum(ran.values()) == 8
    assert min(ran.values()) >= 3, f"the slow tasks piled up on one worker: {ran}"
