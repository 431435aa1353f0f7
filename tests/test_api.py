"""The Python API (riaktq_cli/api/queue.py) on both stores: each method, each
exception, paging, waiting, sharing one Queue between threads -- and the
rule that the commands reach the store only through it."""

import ast
import threading
from pathlib import Path

import pytest

from riaktq_cli import (
    BadInput,
    BadTasks,
    ConfigError,
    NoSuchTask,
    Queue,
    QueueClosed,
    RiaktqError,
    StoreUnavailable,
    Task,
    TaskExists,
    WaitTimeout,
    WrongStatus,
)
from riaktq_cli.core import task as T
from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import DuplicateTask, TaskNotFound
from tests.conftest import ROOT, wait_until


@pytest.fixture
def queue(config_file):
    with Queue.from_config(config_file) as q:
        yield q


def finish(queue, task_id, status=T.DONE, out=b"out"):
    """Run the task as a worker and the scheduler would: assign, then close."""
    def change(task):
        return T.close(T.assign(task, "w1"), "w1", status, out, now_us(), 5)[0]
    assert queue.store.update_tasks([task_id], change)


class Counting:
    """A store that records what the API asks of it (and passes it on)."""

    def __init__(self, store):
        self.store = store
        self.calls = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_tasks(self, ids):
        ids = list(ids)
        self.calls.append(("get_tasks", len(ids)))
        return self.store.get_tasks(ids)

    def create_tasks(self, tasks):
        self.calls.append(("create_tasks", len(tasks)))
        return self.store.create_tasks(tasks)


# --- open and get ---------------------------------------------------------------

def test_open_and_get_return_task_values(queue):
    opened = queue.open("task-42", b"payload\xff", priority=5, tags=["gpu", "big"], retry=2,
                        max_attempts=4, time_limit="10m")
    assert isinstance(opened, Task)
    got = queue.get("task-42")
    assert got == opened
    assert (got.id, got.status, got.priority, got.retry, got.in_, got.out) == \
        ("task-42", "todo", 5, 2, b"payload\xff", None)
    assert (got.tags, got.max_attempts, got.time_limit) == (("big", "gpu"), 4, 600.0)
    assert queue.open("text", "ünïcode", time_limit=1.5).in_ == "ünïcode".encode()


def test_open_refuses_an_existing_id(queue):
    queue.open("dup", b"first")
    with pytest.raises(TaskExists) as caught:
        queue.open("dup", b"second")
    assert caught.value.task_id == "dup" and caught.value.exit_code == 1
    assert str(caught.value) == "task 'dup' already exists"
    assert queue.get("dup").in_ == b"first"


@pytest.mark.parametrize("args,kwargs,needle", [
    (("bad id", b"x"), {}, "whitespace"),
    (("", b"x"), {}, "non-empty"),
    (("a", 42), {}, "bytes or str"),
    (("a", b"x"), {"priority": 2 ** 60}, "out of range"),
    (("a", b"x"), {"priority": "high"}, "whole number"),
    (("a", b"x"), {"retry": -1}, "out of range"),
    (("a", b"x"), {"tags": "gpu"}, "list of strings"),
    (("a", b"x"), {"tags": ["has space"]}, "bad tag"),
    (("a", b"x"), {"max_attempts": 0}, "out of range"),
    (("a", b"x"), {"time_limit": "5x"}, "bad time limit"),
    (("a", b"x"), {"time_limit": 0}, "out of range"),
])
def test_bad_input_is_refused_and_writes_nothing(queue, args, kwargs, needle):
    with pytest.raises(BadInput) as caught:
        queue.open(*args, **kwargs)
    assert needle in str(caught.value) and caught.value.exit_code == 2
    assert list(queue.ids()) == []


def test_get_of_a_missing_task(queue):
    with pytest.raises(NoSuchTask) as caught:
        queue.get("missing")
    assert str(caught.value) == "no task 'missing'" and caught.value.exit_code == 1


def test_the_old_error_names_are_the_new_ones():
    assert DuplicateTask is TaskExists and TaskNotFound is NoSuchTask
    for error in (TaskExists, NoSuchTask, BadInput, BadTasks, WrongStatus, WaitTimeout, QueueClosed,
                  StoreUnavailable, ConfigError):
        assert issubclass(error, RiaktqError)
    assert issubclass(WaitTimeout, TimeoutError) and issubclass(BadTasks, BadInput)
    assert (BadInput.exit_code, WaitTimeout.exit_code, StoreUnavailable.exit_code) == (2, 2, 3)


# --- open_many ------------------------------------------------------------------

def test_open_many_writes_once_and_reports_each_task(queue):
    queue.open("b", b"old")
    counting = Counting(queue.store)
    outcomes = Queue(counting).open_many(
        [{"id": "a", "data": b"1", "priority": 3}, {"id": "b", "data": b"2"},
         {"id": "c", "tags": ["t"], "time_limit": "1m"}])
    assert counting.calls == [("create_tasks", 3)]  # one round of writes
    assert [(o.id, o.ok) for o in outcomes] == [("a", True), ("b", False), ("c", True)]
    assert isinstance(outcomes[1].error, TaskExists) and outcomes[1].task is None
    assert outcomes[0].task == queue.get("a") and queue.get("a").priority == 3
    assert queue.get("b").in_ == b"old" and queue.get("c").time_limit == 60.0


def test_open_many_with_a_bad_task_opens_none(queue):
    with pytest.raises(BadTasks) as caught:
        queue.open_many([{"id": "ok"}, {"id": "bad id"}, {"idd": "x"}, "not a mapping", {"id": "p", "priority": 1.5}])
    assert [n for n, _ in caught.value.problems] == [1, 2, 3, 4]
    assert "unknown field 'idd'" in caught.value.problems[1][1]
    assert str(caught.value).startswith("4 bad task(s), none opened: task 1: ")
    assert list(queue.ids()) == []
    assert queue.open_many([]) == []


# --- wait -------------------------------------------------------------------------

def test_wait_returns_the_finished_tasks_in_order(queue, config_file):
    for task_id in ("a", "b", "c"):
        queue.open(task_id, b"in")
    finish(queue, "b", T.FAILED, b"why")
    counting = Counting(queue.store)
    with Queue.from_config(config_file) as other:  # another connection, as the scheduler's
        def finish_the_rest():  # once `wait` has seen them unfinished
            wait_until(lambda: counting.calls, message="wait reads the tasks")
            finish(other, "c", out=b"cc")
            finish(other, "a", out=b"aa")
        worker = threading.Thread(target=finish_the_rest)
        worker.start()
        try:
            done = Queue(counting).wait(["a", "b", "c", "a"], timeout=60)
        finally:
            worker.join()
    assert [(t.id, t.status, t.out) for t in done] == [("a", "done", b"aa"), ("b", "failed", b"why"),
                                                       ("c", "done", b"cc")]
    assert len(counting.calls) >= 2  # it did wait
    assert queue.wait("a")[0].out == b"aa"  # one id, and already finished: at once


def test_wait_times_out_with_what_is_pending(queue):
    queue.open("slow", b"x")
    queue.open("quick", b"x")
    finish(queue, "quick")
    queue.store.update_tasks(["slow"], lambda task: T.assign(task, "w1"))  # running, not finished
    with pytest.raises(WaitTimeout) as caught:
        queue.wait(["slow", "quick"], timeout="200ms")
    assert caught.value.pending == {"slow": "nextup"}
    assert [t.id for t in caught.value.finished] == ["quick"]
    assert str(caught.value) == "task 'slow' still nextup after the timeout"
    with pytest.raises(WaitTimeout):
        queue.wait(["slow"], timeout=0)
    with pytest.raises(BadInput):
        queue.wait(["slow"], timeout=-1)


def test_wait_for_a_missing_task(queue):
    with pytest.raises(NoSuchTask):
        queue.wait(["nobody"], timeout=5)


# --- listing -------------------------------------------------------------------------

def test_tasks_pages_through_1100_tasks(queue):
    outcomes = queue.open_many([{"id": f"t{n:04d}", "data": str(n), "priority": n % 3} for n in range(1100)])
    assert all(o.ok for o in outcomes)
    for n in range(0, 1100, 100):
        finish(queue, f"t{n:04d}")
    counting = Counting(queue.store)
    paged = Queue(counting)
    listing = paged.tasks()
    first = next(listing)
    assert first.id == "t0000" and counting.calls == [("get_tasks", 500)]  # lazy: one chunk so far
    rest = list(listing)
    assert [t.id for t in [first] + rest] == [f"t{n:04d}" for n in range(1100)]  # oldest first
    assert [n for _, n in counting.calls] == [500, 500, 100]  # never everything at once
    assert [t.id for t in paged.tasks(T.DONE)] == [f"t{n:04d}" for n in range(0, 1100, 100)]
    assert len(list(paged.tasks(T.TODO, limit=1050))) == 1050
    assert [t.in_ for t in paged.tasks(limit=2)] == [b"0", b"1"]
    assert len(list(paged.ids(T.TODO))) == 1089


def test_listing_filters_and_refusals(queue):
    queue.open("old", b"x")
    assert list(queue.ids(age="1h")) == [] and list(queue.ids(age=0)) == ["old"]
    assert list(queue.tasks(limit=0)) == []
    with pytest.raises(BadInput):
        queue.tasks(status="lost")
    with pytest.raises(BadInput):
        queue.ids(limit=-1)
    with pytest.raises(BadInput):
        queue.ids(age="-")


# --- requeue, rm, stats ------------------------------------------------------------------

def test_requeue_puts_finished_tasks_back(queue):
    for task_id in ("done", "failed", "todo"):
        queue.open(task_id, b"x")
    finish(queue, "done")
    finish(queue, "failed", T.FAILED, b"boom")
    dry = queue.requeue(["done", "failed", "todo"], dry_run=True)
    assert [o.ok for o in dry] == [True, True, False] and queue.get("done").status == "done"
    only_failed = queue.requeue(["done", "failed"], status=T.FAILED, retry=2)
    assert [o.ok for o in only_failed] == [False, True]
    assert str(only_failed[0].error) == "task 'done' is done, not failed"
    again = queue.get("failed")
    assert (again.status, again.retry, again.out) == ("todo", 2, b"boom") and only_failed[1].task == again
    outcomes = queue.requeue(["done", "todo", "missing"])
    assert outcomes[0].ok and queue.get("done").status == "todo"
    assert isinstance(outcomes[1].error, WrongStatus) and outcomes[1].error.status == "todo"
    assert str(outcomes[1].error) == "task 'todo' is todo, not done or failed"
    assert isinstance(outcomes[2].error, NoSuchTask)
    with pytest.raises(BadInput):
        queue.requeue(["done"], retry=-1)
    with pytest.raises(BadInput):
        queue.requeue(["done"], status="todo")


def test_rm_removes_and_reports_missing(queue):
    queue.open("a", b"x")
    outcomes = queue.rm(["a", "a", "nope"])
    assert [(o.id, o.ok) for o in outcomes] == [("a", True), ("nope", False)]
    assert isinstance(outcomes[1].error, NoSuchTask)
    with pytest.raises(NoSuchTask):
        queue.get("a")


def test_stats_and_instances(queue):
    queue.open("a", b"x")
    queue.open("b", b"x")
    finish(queue, "b")
    figures = queue.stats()
    assert figures["counts"] == {"todo": 1, "nextup": 0, "done": 1, "failed": 0}
    assert figures["closed_last_minute"] == 1 and figures["instances"] == []
    assert queue.instances() == []


# --- life cycle, configuration, threads ----------------------------------------------------

def test_with_closes_and_a_closed_queue_says_so(queue):
    counting = Counting(queue.store)
    counting.close = lambda: counting.calls.append(("close", 0))
    with Queue(counting) as q:
        q.open("a", b"x")
    assert counting.calls[-1] == ("close", 0)
    q.close()  # twice is harmless
    assert [c for c in counting.calls if c[0] == "close"] == [("close", 0)]
    with pytest.raises(QueueClosed):
        q.get("a")
    with pytest.raises(QueueClosed):
        q.open("b", b"x")
    assert "closed" in repr(q)


def test_from_config_looks_where_the_command_looks(tmp_path, monkeypatch, config_file):
    monkeypatch.delenv("RIAKTQ_CONFIG", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with Queue.from_config(config_file) as q:  # 1. the path given
        q.open("via-path", b"x")
    monkeypatch.setenv("RIAKTQ_CONFIG", str(config_file))
    with Queue.from_config() as q:  # 2. $RIAKTQ_CONFIG
        assert q.get("via-path").id == "via-path"
    monkeypatch.delenv("RIAKTQ_CONFIG")
    monkeypatch.chdir(config_file.parent)
    assert config_file.name == "riaktq.toml"
    with Queue.from_config() as q:  # 3. ./riaktq.toml
        assert q.get("via-path").id == "via-path"
    monkeypatch.chdir(elsewhere)
    with Queue.from_config() as q:  # 4. none: the embedded store, ./riaktq.db
        q.open("here", b"x")
        with pytest.raises(NoSuchTask):
            q.get("via-path")
    assert (elsewhere / "riaktq.db").exists()
    with pytest.raises(ConfigError):
        Queue.from_config(tmp_path / "missing.toml")


def test_an_unreachable_store_raises_store_unavailable(tmp_path):
    pytest.importorskip("riaktq_cli.store.riak")
    cfg = tmp_path / "down.toml"
    cfg.write_text('[store]\nbackend = "riak"\n[riak]\nnodes = ["http://127.0.0.1:9"]\ntimeout = "1s"\n')
    with Queue.from_config(cfg) as q:
        with pytest.raises(StoreUnavailable) as caught:
            q.open("a", b"x")
    assert caught.value.exit_code == 3


def test_one_queue_shared_by_8_threads_loses_nothing(queue):
    errors = []

    def opener(n):
        try:
            for i in range(125):
                queue.open(f"t{n}-{i:03d}", f"{n}:{i}")
        except Exception as exc:  # any failure fails the test below
            errors.append(exc)
    threads = [threading.Thread(target=opener, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = list(queue.ids())
    assert len(ids) == 1000 and set(ids) == {f"t{n}-{i:03d}" for n in range(8) for i in range(125)}
    found = {t.id: t.in_ for t in queue.tasks()}
    assert found["t7-124"] == b"7:124" and queue.stats()["counts"]["todo"] == 1000


# --- the commands stand on the API ----------------------------------------------------------

def test_no_command_imports_a_store():
    """Every command reads and changes tasks through riaktq_cli.api.queue, never a store module."""
    offenders = []
    for path in sorted((ROOT / "riaktq_cli" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "riaktq_cli.store" or n.startswith("riaktq_cli.store.") for n in names):
                offenders.append(f"{Path(path).name}:{node.lineno}")
    assert offenders == []
