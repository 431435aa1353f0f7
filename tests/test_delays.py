"""Delayed tasks and retry back-off (issue 10), on both stores.

`open --delay/--at` (and "delay"/"at" in batch lines) keep a task out of
the todo order until it is due; a backlog of delayed tasks never delays a
due one and costs the scheduler no scan; `--retry-delay` and `[scheduler]
retry_delay` make a restart wait, doubling per run up to `retry_delay_max`;
all of it kept in the store, so a scheduler killed with -9 loses nothing.
"""

import json
import os
import signal

import pytest

from riaktq_cli.config import loading as config
from riaktq_cli.core import task as T
from riaktq_cli.api.inputs import make_task
from riaktq_cli.core.clock import now_us
from riaktq_cli.scheduler.events import EventSink
from riaktq_cli.scheduler.iteration import Scheduler
from riaktq_cli.store import open_store
from tests.conftest import Processes, read_events, wait_until, write_config

S = 1_000_000


def lines(stream):
    return [line for line in stream.decode().splitlines() if line.strip()]


def todo_json(procs):
    result = procs.run("tasks", "--status", "todo", "--format", "json", "--limit", "0")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def idle_instance(store, name, prefetch_tags=()):
    store.put_record("instance", name, {"name": name, "tags": list(prefetch_tags), "heartbeat": now_us(),
                                        "status": "idle", "taken": 0, "queue": [], "current": None,
                                        "outbox": [], "token": None})


def scheduler(store, prefetch=1, **kw):
    return Scheduler(store, instance_timeout=30.0, prefetch=prefetch, events=EventSink(None), **kw)


# --- opening ---------------------------------------------------------------
def test_open_with_delay_or_at_shows_when_each_is_due(procs, tmp_path):
    before = now_us()
    assert procs.run("open", "soon", "--in", "x", "--delay", "10m").returncode == 0
    assert procs.run("open", "new-year", "--in", "x", "--at", "2099-01-01T06:00:00+01:00",
                     "--retry-delay", "30s").returncode == 0
    assert procs.run("open", "now", "--in", "x").returncode == 0
    assert procs.run("open", "past", "--in", "x", "--at", "2001-01-01T00:00:00Z").returncode == 0
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({"id": "b1", "in": "x", "delay": "1h", "retry_delay": "2m"}) + "\n"
                     + json.dumps({"id": "b2", "in": "x", "at": "2099-01-01T05:00:00Z"}) + "\n")
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    (tmp_path / "input").write_bytes(b"\x00")
    assert procs.run("open", "clicked", "--in-file", str(tmp_path / "input"),   # the click lane, not the fast one
                     "--at", "2099-01-01T05:00:00Z").returncode == 0

    rows = todo_json(procs)
    assert rows["clicked"]["due"] == 4070926800 * S
    assert before + 600 * S <= rows["soon"]["due"] <= now_us() + 600 * S
    assert rows["new-year"]["due"] == rows["b2"]["due"] == 4070926800 * S
    assert rows["now"]["due"] is None and rows["past"]["due"] is None   # due already: ready at once
    assert before + 3600 * S <= rows["b1"]["due"] <= now_us() + 3600 * S
    assert (rows["new-year"]["retry_delay"], rows["b1"]["retry_delay"], rows["now"]["retry_delay"]) == \
        (30.0, 120.0, None)
    table = procs.run("tasks", "--status", "todo")
    assert table.returncode == 0 and "DUE" in lines(table.stdout)[0]
    [new_year] = [line for line in lines(table.stdout) if line.startswith("new-year")]
    assert "2099-01-01 05:00:00" in new_year


@pytest.mark.parametrize("args", [
    ["--at", "2026-12-01T06:00:00"],             # no timezone
    ["--at", "next tuesday"],
    ["--at", "2026-13-01T06:00:00Z"],
    ["--delay", "-5s"],
    ["--delay", "10"],                           # no unit
    ["--delay", "1m", "--at", "2099-01-01T00:00:00Z"],
    ["--retry-delay", "367d"],
])
def test_bad_due_times_are_one_line_and_exit_2(procs, store, args):
    result = procs.run("open", "bad", "--in", "x", *args)
    assert result.returncode == 2 and len(lines(result.stderr)) == 1, result.stderr
    assert b"Traceback" not in result.stderr and store.get_task("bad") is None


def test_bad_due_times_in_a_batch_open_nothing(procs, store, tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(line) for line in [
        {"id": "ok", "in": "x", "delay": "1m"}, {"id": "b1", "in": "x", "at": "2026-12-01"},
        {"id": "b2", "in": "x", "delay": 30}, {"id": "b3", "in": "x", "delay": "1m", "at": "2099-01-01T00:00Z"},
    ]) + "\n")
    result = procs.run("open", "--batch", str(batch))
    assert result.returncode == 2
    # each bad line after the one prefix every failure has (riaktq: error: line N: ...)
    assert [line.split(":")[2].strip() for line in lines(result.stderr)[:3]] == ["line 2", "line 3", "line 4"]
    assert store.get_task("ok") is None


# --- the scheduler ------------------------------------------------------------
def test_due_tasks_are_released_into_the_todo_order_and_others_wait(store):
    past = now_us() - 60 * S
    store.create_tasks([make_task("waited", b"", delay=10, now=past),      # due 50 s ago
                        make_task("waiting", b"", delay=3600, priority=9),
                        make_task("ready", b"")])
    assert [t.id for t in store.iter_todo()] == ["ready"]                 # waiting ones: no todo order
    assert [task_id for _, task_id in store.due_tasks()] == ["waited", "waiting"]
    now = now_us()
    assert [i for _, i in store.due_tasks(0, now, 10)] == ["waited"]             # due by now
    assert [i for _, i in store.due_tasks(now + 1, None, 1)] == ["waiting"]      # the next to come
    assert store.due_tasks(0, past, 10) == []
    idle_instance(store, "w")
    s = scheduler(store, prefetch=10)
    assert s.iteration()["assign"] == 2
    tasks = store.get_tasks(["waited", "waiting", "ready"])
    assert (tasks["waited"].status, tasks["ready"].status, tasks["waiting"].status) == ("nextup", "nextup", "todo")
    assert tasks["waited"].due is None and tasks["waiting"].due > now_us() + 3500 * S
    assert s.due.next_due == tasks["waiting"].due                            # what it looks for next
    with pytest.raises(Exception, match="not due yet"):
        T.assign(tasks["waiting"], "w")


def count_sqlite_steps(store):
    """A counter of SQLite VM steps (in hundreds) on the store's connection."""
    counter = [0]

    def tick():
        counter[0] += 1
        return 0
    store._db.set_progress_handler(tick, 100)
    return counter


def test_a_delayed_backlog_never_delays_a_due_task(store, backend, riak_server):
    """10,000 delayed tasks of a higher priority and one due task: the due
    one is assigned in the first iteration, and the iteration reads none of
    the delayed ones (Riak: a handful of GETs; SQLite: VM steps as with an
    empty queue)."""
    baseline = scheduler(store)
    idle_instance(store, "w")
    counter = count_sqlite_steps(store) if backend == "sqlite" else None
    store.create_task(make_task("warm-up", b""))
    baseline.iteration()                                     # an iteration with nothing delayed
    empty_steps = counter[0] if counter else None
    later = now_us()
    delayed = [make_task(f"d{i:05d}", b"", priority=5, delay=3600, now=later) for i in range(10_000)]
    for start in range(0, len(delayed), 500):
        assert store.create_tasks(delayed[start:start + 500]) == [None] * 500
    store.create_task(make_task("due-one", b"", priority=0))
    store.put_record("instance", "w", {"name": "w", "tags": [], "heartbeat": now_us(), "status": "idle",
                                       "taken": 1, "queue": [], "current": None, "outbox": [], "token": None})
    s = scheduler(store)
    if counter:
        counter[0] = 0
    if riak_server is not None:
        riak_server.reset_counts()
    summary = s.iteration()
    assert summary["assign"] == 1 and store.get_task("due-one").status == "nextup"
    assert store.get_task("d00000").status == "todo"
    if counter:
        assert counter[0] < 3 * empty_steps + 50, f"{counter[0]}00 VM steps, {empty_steps}00 with nothing delayed"
    if riak_server is not None:
        gets = riak_server.counts["get"]
        assert gets < 20, f"{gets} GETs in one iteration over a delayed backlog"


# --- through processes, with kill -9 ---------------------------------------------
def history_of(store, task_id):
    return [dict(zip(("at", "transition", "instance", "run", "reason"), e)) for e in store.get_task(task_id).history]


@pytest.fixture
def backoff(tmp_path, backend, request):
    """(procs, store) on a config with [scheduler] retry_delay 500ms, retry_delay_max 3s."""
    url = request.getfixturevalue("riak_url") if backend == "riak" else None
    path = write_config(tmp_path / "riaktq.toml", backend, url,
                        scheduler={"interval": "100ms", "instance_timeout": "2s", "retry_delay": "500ms",
                                   "retry_delay_max": "3s"},
                        worker={"heartbeat": "200ms", "poll": "50ms"})
    procs, store = Processes(tmp_path, path), open_store(config.load(str(path)))
    yield procs, store
    procs.cleanup()
    store.close()


def test_back_off_doubles_to_the_max_and_survives_a_kill_9(backoff, tmp_path):
    """A task failing four times restarts after 1 s, 2 s, then 3 s (4 s capped
    by retry_delay_max); one without its own delay after [scheduler]
    retry_delay; a delayed task waits for its time. The first scheduler is
    killed with -9 after the first restart: the second honours what the
    store says. Measured from the store: each restart's due time against the
    restart's own time in the history, and no assign before its due time."""
    procs, store = backoff
    events = [tmp_path / "ev0.jsonl", tmp_path / "ev1.jsonl"]
    first = procs.start("scheduler", "--events", str(events[0]), name="s1")
    procs.start("worker", "--handler", "fail", "--name", "f", name="f")
    assert procs.run("open", "bo", "--in", "boom", "--retry", "3", "--retry-delay", "1s").returncode == 0
    assert procs.run("open", "plain", "--in", "boom", "--retry", "1").returncode == 0
    assert procs.run("open", "later", "--in", "boom", "--delay", "2s").returncode == 0
    opened_later = now_us()
    wait_until(lambda: any(e[1] == "restart" for e in store.get_task("bo").history), message="first restart")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    procs.start("scheduler", "--events", str(events[1]), name="s2")
    for task_id in ("bo", "plain", "later"):
        wait_until(lambda: store.get_task(task_id).status == "failed", timeout=60, message=f"{task_id} failed")

    restarts = {}   # (id, run) -> due, from the restart events of either scheduler
    for event in (e for path in events for e in read_events(path)):
        if event["transition"] == "restart":
            restarts[(event["id"], event["run"])] = event["task"]["due"]
    # run r's failure restarts after base * 2^(r-1), at most 3 s: bo (1s) 1, 2, 3 (not 4); plain
    # ([scheduler] retry_delay 500ms) 0.5. A run lost under a busy machine's load counts as a run.
    for task_id, base, restarts_expected in (("bo", 1.0, 3), ("plain", 0.5, 1)):
        history = history_of(store, task_id)
        kinds = [h["transition"] for h in history]
        assert kinds.count("restart") == restarts_expected and kinds[-1] == "close", history
        for n, entry in enumerate(history):
            if entry["transition"] != "restart":
                continue
            delay = min(base * 2 ** (entry["run"] - 1), 3.0)
            next_assign = next(h for h in history[n:] if h["transition"] == "assign")
            due = restarts.get((task_id, entry["run"]))
            if due is None:      # written by the scheduler killed before it wrote the event
                continue
            assert abs((due - entry["at"]) / S - delay) <= 0.1 * delay, (task_id, entry, due - entry["at"])
            assert next_assign["at"] >= due, f"{task_id}: run {next_assign['run']} assigned before it was due"
    [assign, _close] = history_of(store, "later")
    assert assign["at"] >= opened_later + 2 * S - 200_000       # --delay 2s, measured from before `open` returned
