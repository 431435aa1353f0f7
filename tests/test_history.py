"""Each task's history of transitions (issue 10), on both stores.

`riaktq get ID --history` shows the last transitions (assign, close,
restart, rollback, requeue) as a table and in JSON; it matches the events
file of the same run; it is bounded; it rides in the task (no request of its
own on Riak); records and databases made before it still load.
"""

import json
import signal
import sqlite3

from riaktq_cli.core import history, task as T
from riaktq_cli.api.inputs import make_task
from riaktq_cli.core.clock import now_us
from riaktq_cli.store.sqlite import SqliteStore
from tests.conftest import read_events, wait_until


def entries(store, task_id):
    return [dict(zip(history.FIELDS, e)) for e in store.get_task(task_id).history]


def test_history_matches_the_events_file(procs, store, tmp_path):
    """A task that fails and restarts, one handed back by a stopping worker
    and run by another, and one requeued: `get --history` says what the
    events file says, in order (transition, run, instance)."""
    events = tmp_path / "events.jsonl"
    sched = procs.start("scheduler", "--events", str(events), name="sched")
    procs.start("worker", "--handler", "fail", "--name", "f", "--tag", "fail", name="f")
    stopping = procs.start("worker", "--handler", "sleep", "--name", "s1", "--tag", "sleep",
                           "--shutdown-grace", "0s", name="s1")
    assert procs.run("open", "flaky", "--in", "boom", "--retry", "2", "--tag", "fail").returncode == 0
    assert procs.run("open", "slow", "--in", "1.5", "--tag", "sleep").returncode == 0
    wait_until(lambda: (store.get_record("instance", "s1") or {}).get("current"), message="slow running on s1")
    assert procs.stop(stopping, signal.SIGTERM) == 0                     # hands `slow` back
    procs.start("worker", "--handler", "sleep", "--name", "s2", "--tag", "sleep", name="s2")
    wait_until(lambda: store.get_task("slow").status == "done", message="slow done on s2")
    wait_until(lambda: store.get_task("flaky").status == "failed", message="flaky failed")
    assert procs.stop(sched) == 0
    assert procs.run("requeue", "flaky").returncode == 0    # no scheduler now: it stays todo

    seen = {}
    for event in read_events(events):   # at least once: repeats dropped by (id, run, transition)
        instance = event.get("instance") or event["task"]["assignee"]
        seen.setdefault(event["id"], {}).setdefault((event["transition"], event["run"], instance), None)
    for task_id in ("flaky", "slow"):
        shown = procs.run("get", task_id, "--history", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        listed = json.loads(shown.stdout)["history"]
        assert [(h["transition"], h["run"], h["instance"]) for h in listed if h["transition"] != "requeue"] == \
            list(seen[task_id]), task_id
        assert [h["at"] for h in listed] == sorted(h["at"] for h in listed)
    flaky = json.loads(procs.run("get", "flaky", "--history", "--format", "json").stdout)["history"]
    assert [h["transition"] for h in flaky] == ["assign", "restart"] * 2 + ["assign", "close", "requeue"]
    assert flaky[1]["reason"] == "TaskFailed: boom" and flaky[-2]["reason"] == "failed: TaskFailed: boom"
    slow = entries(store, "slow")
    assert [(h["transition"], h["instance"], h["run"]) for h in slow] == \
        [("assign", "s1", 1), ("rollback", "s1", 1), ("assign", "s2", 2), ("close", "s2", 2)]
    assert slow[1]["reason"] == "handed back" and slow[3]["reason"] == "done"

    table = procs.run("get", "slow", "--history")
    assert table.returncode == 0
    text = table.stdout.decode()
    assert "TRANSITION" in text and "handed back" in text and text.split("history:")[1].count(" assign ") == 2
    assert "history" not in json.loads(procs.run("get", "slow", "--format", "json").stdout)
    assert "history" not in procs.run("tasks", "--format", "json").stdout.decode()


def test_history_is_bounded_and_compact():
    task = make_task("loop", b"x", retry=T.RETRY_MAX)
    for run in range(30):
        task = T.assign(task, "w", now=run * 10)
        task, kind = T.close(task, "w", T.FAILED, b"boom\n  Traceback: " + b"x" * 500, 1, 1, now=run * 10 + 5)
        assert kind == "restart"
    assert len(task.history) == history.MAX_ENTRIES
    assert task.history[-1] == (295, "restart", "w", 30, "boom Traceback: " + "x" * 63 + "…")
    assert task.history[0] == (200, "assign", "w", 21, None)
    assert len(json.dumps(task.to_record()["history"])) < 3000          # the bytes it adds to a task, at most


def test_records_and_databases_without_the_new_fields_still_load(tmp_path):
    old = {"id": "t", "status": "todo", "priority": 0, "retry": 1, "assignee": None, "in": "eA==",
           "out": None, "sat": None, "laf": None, "cat": 5, "tags": [], "rev": 1}
    task = T.Task.from_record(old)
    assert (task.due, task.retry_delay, task.history, task.run) == (None, None, (), 0)
    assert T.assign(task, "w").history[0][1:] == ("assign", "w", 1, None)

    path = tmp_path / "old.db"          # a database as the first release made it
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT NOT NULL, priority INTEGER NOT NULL,
        retry INTEGER NOT NULL, assignee TEXT, in_ BLOB NOT NULL, out BLOB, sat INTEGER, laf INTEGER,
        cat INTEGER NOT NULL, tags TEXT NOT NULL, rev INTEGER NOT NULL);
        CREATE INDEX tasks_todo_order ON tasks (status, priority DESC, cat, id);
        INSERT INTO tasks VALUES ('old', 'todo', 3, 0, NULL, X'78', NULL, NULL, NULL, 7, '[]', 1);""")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert [t.id for t in store.iter_todo()] == ["old"]
    store.update_tasks(["old"], lambda t: T.assign(t, "w"))
    moved = store.get_task("old")
    assert moved.status == "nextup" and moved.history[0][1:] == ("assign", "w", 1, None)
    store.create_task(make_task("later", b"", delay=60))
    assert [i for _, i in store.due_tasks()] == ["later"] and [t.id for t in store.iter_todo()] == []
    indexes = {row[1] for row in store._db.execute("PRAGMA index_list(tasks)")}
    assert "tasks_todo_order" not in indexes and "tasks_ready_order" in indexes
    store.close()


def test_history_costs_no_request_on_riak(store, backend, riak_server):
    """An assign costs the same requests for a task with no history and for
    one with 19 entries: the history is in the body."""
    if backend != "riak" or riak_server is None:
        return
    long = make_task("long", b"x", retry=50)
    for run in range(9):
        long = T.close(T.assign(long, "w"), "w", T.FAILED, b"boom", 1, 1)[0]
    store.create_tasks([make_task("fresh", b"x"), long.with_(history=long.history + long.history[-1:])])
    counts = []
    for task_id in ("fresh", "long"):
        riak_server.reset_counts()
        store.update_tasks([task_id], lambda t: T.assign(t, "w"))
        counts.append(dict(riak_server.counts))
    assert counts[0] == counts[1] and counts[0]["put"] == 1
    assert len(store.get_task("long").history) == 20 and len(store.get_task("fresh").history) == 1
