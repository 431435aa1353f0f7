"""The store contract, run on both stores (SQLite and Riak)."""

import pytest

from riaktq_cli.core import task as t
from riaktq_cli.core.errors import DuplicateTask
from riaktq_cli.scheduler.lease import release
from tests.conftest import take_lease


def new(task_id, priority=0, cat=1, tags=(), data=b"x"):
    return t.new_task(task_id, data, priority=priority, tags=tags, now=cat)


def test_create_get_delete(store):
    store.create_task(new("a", data=b"\xff\x00bin"))
    got = store.get_task("a")
    assert got.in_ == b"\xff\x00bin" and got.status == "todo"
    with pytest.raises(DuplicateTask):
        store.create_task(new("a"))
    errors = store.create_tasks([new("b"), new("a"), new("c")])
    assert errors[0] is None and isinstance(errors[1], DuplicateTask) and errors[2] is None
    assert store.delete_task("a") is True
    assert store.get_task("a") is None
    assert store.delete_task("a") is False
    store.create_task(new("a"))  # an id can be reused after rm
    assert set(store.get_tasks(["a", "b", "zz"])) == {"a", "b"}


def test_odd_ids_round_trip(store):
    for task_id in ["a/b", "a+b", "ü-ñ", "x%20y", "a:b"]:
        store.create_task(new(task_id))
        assert store.get_task(task_id).id == task_id
        assert store.delete_task(task_id)


def test_update_tasks_applies_transitions(store):
    store.create_tasks([new("a"), new("b")])
    written = store.update_tasks(["a", "b", "missing"], lambda task: t.assign(task, "w1") if task.id == "a" else None)
    assert [(old.status, new_.status) for old, new_ in written] == [("todo", "nextup")]
    assert store.get_task("a").assignee == "w1" and store.get_task("a").rev == 2
    assert store.nextup_assignees() == [("a", "w1")]
    store.update_tasks(["a"], lambda task: t.close(task, "w1", "done", b"out", 5, 6)[0])
    done = store.get_task("a")
    assert (done.status, done.out, done.sat, done.laf, done.assignee) == ("done", b"out", 5, 6, "w1")
    assert store.nextup_assignees() == []


def test_todo_order_across_pages(store):
    # priority desc, then cat asc, then id; negative priorities too
    specs = [(f"t{i:03d}", (i * 7) % 5 - 2, 1000 + (i * 13) % 11) for i in range(57)]
    store.create_tasks([new(i, priority=p, cat=c) for i, p, c in specs])
    store.update_tasks(["t000", "t001"], lambda task: t.assign(task, "w"))
    expected = [i for i, p, c in sorted(specs, key=lambda s: (-s[1], s[2], s[0]))
                if i not in ("t000", "t001")]
    assert [task.id for task in store.iter_todo(page_size=10)] == expected
    assert [task.id for task in store.iter_todo(page_size=1000)] == expected


def test_ids_by_status_and_age(store):
    store.create_tasks([new(f"old{i}", cat=100 + i) for i in range(5)] +
                       [new(f"new{i}", cat=1000 + i) for i in range(5)])
    store.update_tasks(["old0", "new0"], lambda task: t.assign(task, "w"))
    assert list(store.iter_ids(status="todo", created_before=500, page_size=2)) == [f"old{i}" for i in range(1, 5)]
    assert list(store.iter_ids(status="nextup")) == ["old0", "new0"]
    assert len(list(store.iter_ids(page_size=3))) == 10
    assert list(store.iter_ids(created_before=101)) == ["old0"]
    assert store.count_by_status() == {"todo": 8, "nextup": 2, "done": 0, "failed": 0}
    assert store.oldest_cat("todo") == 101
    assert store.oldest_cat("done") is None


def test_records(store):
    assert store.get_record("instance", "w1") is None
    store.put_record("instance", "w1", {"a": 1})
    store.put_record("instance", "w1", {"a": 2})
    store.put_record("instance", "w2", {"b": [1, 2]})
    assert store.get_record("instance", "w1") == {"a": 2}
    assert store.list_records("instance") == {"w1": {"a": 2}, "w2": {"b": [1, 2]}}
    assert store.list_records("inbox") == {}
    store.delete_record("instance", "w1")
    assert store.list_records("instance") == {"w2": {"b": [1, 2]}}


def test_lease(store):
    held, lease = take_lease(store, "s1", 1_000_000, 10)
    assert held and lease["owner"] == "s1"
    held, lease = take_lease(store, "s2", 1_000_000, 20)
    assert not held and lease["owner"] == "s1"
    assert take_lease(store, "s1", 1_000_000, 30)[0]          # renew
    assert take_lease(store, "s2", 1_000_000, 2_000_000)[0]   # s1's lease expired
    assert not take_lease(store, "s1", 1_000_000, 2_000_001)[0]
    release(store, "s2")
    assert take_lease(store, "s1", 1_000_000, 2_000_002)[0]


def _bump_many(path, times):
    from riaktq_cli.store.sqlite import SqliteStore
    s = SqliteStore(path)
    for _ in range(times):
        s.update_tasks(["counter"], lambda task: task.with_(priority=task.priority + 1))
    s.close()


def test_sqlite_many_processes_lose_no_update(tmp_path):
    """The embedded store's promise: read-modify-writes from several
    processes at once never overwrite each other (BEGIN IMMEDIATE)."""
    import multiprocessing
    from riaktq_cli.store.sqlite import SqliteStore
    path = tmp_path / "shared.db"
    store = SqliteStore(path)
    store.create_task(new("counter"))
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_bump_many, args=(str(path), 100)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    task = store.get_task("counter")
    assert (task.priority, task.rev) == (400, 401)
