"""Controlling the queue from the command line, on both stores (issue 10):
`wait`, `purge` (and `vacuum`), `rm` of several ids, `tasks` filters and
its note when a limit cuts the listing, `requeue --priority`."""

import json
import os
import subprocess

import pytest

from riaktq_cli.core import task as T
from riaktq_cli.api.inputs import make_task
from riaktq_cli.core.clock import now_us
from tests.conftest import wait_until

DAY_US = 86400 * 1_000_000


def finish(store, ids, status=T.DONE, out=b"ok"):
    """Run the tasks as a worker and the scheduler would: assign, then close."""
    def change(task):
        return T.close(T.assign(task, "w1"), "w1", status, out, now_us(), 5)[0]
    assert len(store.update_tasks(ids, change)) == len(ids)


def opened(store, ids, days_old=0, data=b"x", **options):
    tasks = [make_task(i, data, now=now_us() - days_old * DAY_US, **options) for i in ids]
    for start in range(0, len(tasks), 200):
        assert store.create_tasks(tasks[start:start + 200]) == [None] * len(tasks[start:start + 200])
    return ids


def lines(stream):
    return [line for line in stream.decode().splitlines() if line.strip()]


# --- wait ------------------------------------------------------------------
def test_wait_exit_codes_and_formats(procs, store):
    opened(store, ["a", "b", "c"])
    late = procs.run("wait", "a", "b", "--timeout", "300ms")
    assert late.returncode == 2 and late.stdout == b""
    [line] = lines(late.stderr)
    assert "'a' todo" in line and "'b' todo" in line and "Traceback" not in line

    waiting = subprocess.Popen(procs.argv("wait", "a", "b", "--timeout", "60s"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=procs.tmp_path)
    finish(store, ["a"])
    finish(store, ["b"], T.FAILED, b"boom")
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 1
    assert lines(out) == ["a\tdone", "b\tfailed"]

    finish(store, ["c"])
    done = procs.run("wait", "c", "a", "--format", "json")
    assert done.returncode == 0
    assert [(t["id"], t["status"], t["out"]) for t in json.loads(done.stdout)] == [("c", "done", "ok"),
                                                                                  ("a", "done", "ok")]
    missing = procs.run("wait", "a", "nope")
    assert missing.returncode == 1 and len(lines(missing.stderr)) == 1 and "'nope'" in missing.stderr.decode()


def test_open_wait_shares_the_timeout_line(procs):
    result = procs.run("open", "solo", "--in", "x", "--wait", "--timeout", "200ms")
    assert result.returncode == 2
    [line] = lines(result.stderr)
    assert "'solo'" in line and "todo" in line


# --- purge, vacuum, rm -----------------------------------------------------
def test_purge_deletes_old_finished_tasks_only(procs, store):
    old_done = opened(store, [f"od{i:03d}" for i in range(150)], days_old=40)
    old_failed = opened(store, [f"of{i:03d}" for i in range(30)], days_old=40)
    new_done = opened(store, [f"nd{i:03d}" for i in range(20)], days_old=1)
    opened(store, ["old-todo"], days_old=40)
    finish(store, old_done + new_done)
    finish(store, old_failed, T.FAILED)

    dry = procs.run("purge", "--status", "done", "--age", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(lines(dry.stdout)) == old_done
    [summary] = lines(dry.stderr)
    assert summary.startswith("riaktq: would delete 150 done task(s) older than 30d")
    assert store.count_by_status()["done"] == 170

    real = procs.run("purge", "--status", "done", "--age", "30d")
    assert real.returncode == 0 and real.stdout == b""   # no progress on a pipe
    [summary] = lines(real.stderr)
    assert summary.startswith("riaktq: deleted 150 done task(s) older than 30d")
    assert store.count_by_status() == {"todo": 1, "nextup": 0, "done": 20, "failed": 30}
    assert set(store.get_tasks(old_done[:5] + new_done[:5])) == set(new_done[:5])
    assert lines(procs.run("purge", "--status", "done", "--age", "30d").stderr)[0].startswith(
        "riaktq: deleted 0 ")


def test_purge_shows_progress_on_a_terminal(procs, store):
    import pty
    finish(store, opened(store, [f"t{i:03d}" for i in range(50)], days_old=2))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(procs.argv("purge", "--status", "done", "--age", "0s"), stdout=subprocess.PIPE,
                            stderr=follower, cwd=procs.tmp_path)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:                                  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0 and proc.stdout.read() == b""
    assert b"riaktq: deleted 50 done task(s) of any age" in seen
    assert b"\x1b[" in seen                              # rich drew (and cleared) its progress line
    assert store.count_by_status()["done"] == 0


def test_purge_leaves_a_task_requeued_since_it_was_listed(store):
    opened(store, ["r1", "r2"], days_old=2)
    finish(store, ["r1", "r2"])
    store.update_tasks(["r1"], T.requeue)                # listed as done, todo by the time it goes
    assert store.delete_tasks(["r1", "r2"], T.DONE) == 1
    assert store.get_task("r1").status == T.TODO and store.get_task("r2") is None


def test_rm_takes_several_ids(procs, store):
    opened(store, ["x1", "x2", "x3"])
    result = procs.run("rm", "x1", "ghost", "x3", "phantom")
    assert result.returncode == 1
    assert len(lines(result.stderr)) == 2 and "ghost" in lines(result.stderr)[0]
    assert "phantom" in lines(result.stderr)[1]
    assert set(store.get_tasks(["x1", "x2", "x3"])) == {"x2"}
    assert procs.run("rm", "x2").returncode == 0


def db_bytes(path):
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def test_purge_vacuum_shrinks_the_sqlite_file(procs, store, backend):
    ids = opened(store, [f"big{i:03d}" for i in range(300)], days_old=31, data=b"z" * 4000)
    finish(store, ids)
    if backend != "sqlite":
        result = procs.run("purge", "--status", "done", "--age", "30d", "--vacuum")
        assert result.returncode == 0 and "nothing to compact" in lines(result.stderr)[-1]
        assert store.count_by_status()["done"] == 0
        return
    path = store.path
    assert procs.run("purge", "--status", "done", "--age", "30d").returncode == 0
    after_purge = db_bytes(path)
    assert after_purge > 1_000_000                       # deleting alone gives nothing back
    vacuum = procs.run("vacuum")
    assert vacuum.returncode == 0 and "compacted" in vacuum.stderr.decode()
    assert db_bytes(path) < after_purge / 4 and not os.path.getsize(f"{path}-wal")
    ids = opened(store, [f"more{i:03d}" for i in range(300)], days_old=31, data=b"z" * 4000)
    finish(store, ids)
    before = db_bytes(path)
    result = procs.run("purge", "--status", "done", "--age", "30d", "--vacuum")
    assert result.returncode == 0 and "compacted" in lines(result.stderr)[-1]
    assert db_bytes(path) < before / 4


def test_purge_refuses_bad_input(procs, store):
    for args in (["--status", "todo", "--age", "1d"], ["--status", "done"],
                 ["--status", "done", "--age", "1d", "--dry-run", "--vacuum"]):
        result = procs.run("purge", *args)
        assert result.returncode == 2 and len(lines(result.stderr)) == 1, result.stderr


# --- listing that never lies -----------------------------------------------
@pytest.fixture
def listed(store):
    opened(store, [f"img-{i}" for i in range(4)], tags=["gpu"])
    opened(store, [f"txt-{i}" for i in range(3)])
    store.update_tasks(["img-1", "txt-2"], lambda t: T.assign(t, "w7"))
    return store


def ids_of(result):
    assert result.returncode == 0, result.stderr
    return [row["id"] for row in json.loads(result.stdout)]


def test_tasks_filters(procs, listed):
    assert ids_of(procs.run("tasks", "--tag", "gpu", "--format", "json")) == [f"img-{i}" for i in range(4)]
    assert ids_of(procs.run("tasks", "--assignee", "w7", "--format", "json")) == ["img-1", "txt-2"]
    assert ids_of(procs.run("tasks", "--id-prefix", "txt-", "--status", "todo", "--format", "json")) == \
        ["txt-0", "txt-1"]
    assert ids_of(procs.run("tasks", "--tag", "gpu", "--assignee", "w7", "--format", "json")) == ["img-1"]
    assert ids_of(procs.run("tasks", "--tag", "none", "--format", "json")) == []


def test_tasks_says_when_the_limit_cuts(procs, listed):
    cut = procs.run("tasks", "--id-prefix", "img-", "--limit", "3", "--format", "json")
    assert ids_of(cut) == ["img-0", "img-1", "img-2"]
    [note] = lines(cut.stderr)
    assert "first 3" in note and "--limit 0" in note
    table = procs.run("tasks", "--limit", "2")
    assert table.returncode == 0 and "--limit 0" in table.stderr.decode()
    exact = procs.run("tasks", "--id-prefix", "img-", "--limit", "4", "--format", "json")
    assert len(ids_of(exact)) == 4 and exact.stderr == b""
    everything = procs.run("tasks", "--limit", "0", "--format", "csv")
    assert everything.returncode == 0 and everything.stderr == b""
    assert len(lines(everything.stdout)) == 8            # header and 7 tasks


def test_requeue_sets_a_new_priority(procs, store):
    opened(store, ["p1", "p2"], priority=1)
    finish(store, ["p1", "p2"], T.FAILED)
    result = procs.run("requeue", "p1", "--priority", "7")
    assert result.returncode == 0, result.stderr
    assert (store.get_task("p1").status, store.get_task("p1").priority) == (T.TODO, 7)
    too_high = procs.run("requeue", "p2", "--priority", str(2 ** 60))
    assert too_high.returncode == 2 and len(lines(too_high.stderr)) == 1 and "priority" in too_high.stderr.decode()
    assert store.get_task("p2").status == T.FAILED
    none_match = procs.run("requeue", "--status", "done", "--priority", str(2 ** 60))
    assert none_match.returncode == 2 and "priority" in none_match.stderr.decode(), "checked even if none match"
    kept = procs.run("requeue", "p2")
    assert kept.returncode == 0 and store.get_task("p2").priority == 1
    wait_until(lambda: store.get_task("p2").status == T.TODO, message="p2 requeued")
