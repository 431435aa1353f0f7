"""The store contract (riaktq_cli/store/base.py), one case per promise, on both stores.

Where the stores keep a promise differently -- a batch that half failed --
each case says what each store leaves behind, as the contract documents it.
Failures are injected below the store (the Riak client's requests, the
SQLite connection's statements), so the store code under test is the real one.
"""

import sqlite3
import threading

import pytest

from riaktq_cli.core import task as T
from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import DuplicateTask, PartialUpdate, StoreUnavailable


def new(task_id, data=b"x"):
    return T.new_task(task_id, data, now=now_us())


def bump(task):
    """A change: one more retry (any field a transition may change), a new rev."""
    return task.with_(retry=task.retry + 1, rev=task.rev + 1)


class _FailingDb:
    """A SQLite connection whose statements touching `bad_id` fail as a
    locked database does."""

    def __init__(self, db, bad_id):
        self._db, self._bad = db, bad_id

    def _check(self, sql, params):
        if not sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        rows = params if params and isinstance(params[0], (list, tuple)) else [params or ()]
        if any(self._bad in row for row in rows):
            raise sqlite3.OperationalError("database is locked")

    def execute(self, sql, params=()):
        self._check(sql, params)
        return self._db.execute(sql, params)

    def executemany(self, sql, rows):
        rows = list(rows)
        self._check(sql, rows)
        return self._db.executemany(sql, rows)

    def __getattr__(self, name):
        return getattr(self._db, name)


def fail_writes_of(store, monkeypatch, bad_id, *, after_landing=False):
    """Make the store's write of `bad_id` fail as an unreachable store's
    does; with `after_landing` (Riak), only after the write was applied."""
    if hasattr(store, "client"):
        from riaktq_cli.riak import RiakUnavailable
        real = store.client.store

        def store_call(btype, bucket, key, *args, **kwargs):
            if key != bad_id:
                return real(btype, bucket, key, *args, **kwargs)
            if after_landing:
                real(btype, bucket, key, *args, **kwargs)
            raise RiakUnavailable({"http://injected": f"no answer for {key}"})
        monkeypatch.setattr(store.client, "store", store_call)
    else:
        monkeypatch.setattr(store, "_db", _FailingDb(store._db, bad_id))


def is_riak(store):
    return hasattr(store, "client")


# --- create_tasks ------------------------------------------------------------

def test_create_tasks_returns_a_list_parallel_to_its_input(store):
    store.create_task(new("c-2", b"first"))
    result = store.create_tasks([new("c-1"), new("c-2", b"second"), new("c-3")])
    assert result[0] is None and result[2] is None
    assert isinstance(result[1], DuplicateTask) and result[1].task_id == "c-2"
    assert store.get_task("c-2").in_ == b"first"
    assert set(store.get_tasks(["c-1", "c-2", "c-3"])) == {"c-1", "c-2", "c-3"}


def test_create_tasks_raises_when_unreachable_sqlite_nothing_riak_the_rest(store, monkeypatch):
    fail_writes_of(store, monkeypatch, "u-2")
    with pytest.raises(StoreUnavailable):
        store.create_tasks([new("u-1"), new("u-2"), new("u-3")])
    monkeypatch.undo()
    landed = set(store.get_tasks(["u-1", "u-2", "u-3"]))
    assert landed == ({"u-1", "u-3"} if is_riak(store) else set())


# --- update_tasks ------------------------------------------------------------

def test_update_tasks_returns_what_it_wrote_in_order_and_leaves_the_rest(store):
    store.create_tasks([new(f"o-{n}") for n in range(5)])
    ids = ["o-3", "missing", "o-1", "o-3", "o-4", "o-0"]
    written = store.update_tasks(ids, lambda t: None if t.id == "o-4" else bump(t))
    assert [(old.id, new.id) for old, new in written] == [("o-3", "o-3"), ("o-1", "o-1"), ("o-0", "o-0")]
    assert all(new.retry == old.retry + 1 for old, new in written)
    stored = store.get_tasks([f"o-{n}" for n in range(5)])
    assert {i: t.retry for i, t in stored.items()} == {"o-0": 1, "o-1": 1, "o-2": 0, "o-3": 1, "o-4": 0}
    assert store.get_task("missing") is None


def test_change_is_called_once_per_existing_task_with_the_stored_task(store):
    store.create_tasks([new(f"k-{n}", bytes([n])) for n in range(12)])
    seen, lock = [], threading.Lock()

    def change(task):
        with lock:
            seen.append((task.id, task.in_))
        return None
    store.update_tasks([f"k-{n}" for n in range(12)] + ["k-0", "nope"], change)
    assert sorted(seen) == sorted((f"k-{n}", bytes([n])) for n in range(12))


def test_change_may_run_in_several_threads_at_once_on_riak(store):
    """Riak calls `change` in its request pool, several at a time: two calls
    meet at a barrier. SQLite calls it in the caller's thread, one by one."""
    store.create_tasks([new(f"p-{n}") for n in range(8)])
    meet = threading.Barrier(2, timeout=30)
    threads, lock = set(), threading.Lock()

    def change(task):
        with lock:
            threads.add(threading.get_ident())
        # p-0 and p-1 are handed to the pool first: with calls in parallel they
        # meet; run one after the other, the first waits in vain
        if is_riak(store) and task.id in ("p-0", "p-1"):
            meet.wait()  # breaks (and fails the test) unless another call runs meanwhile
        return bump(task)
    written = store.update_tasks([f"p-{n}" for n in range(8)], change)
    assert len(written) == 8
    if is_riak(store):
        assert len(threads) >= 2 and not meet.broken
    else:
        assert threads == {threading.get_ident()}


def test_a_failed_write_may_have_landed_riak_partial_sqlite_all_or_nothing(store, monkeypatch):
    store.create_tasks([new(f"f-{n}") for n in range(3)])
    fail_writes_of(store, monkeypatch, "f-1", after_landing=True)
    if is_riak(store):
        with pytest.raises(PartialUpdate) as caught:
            store.update_tasks(["f-0", "f-1", "f-2"], bump)
        assert [old.id for old, _ in caught.value.written] == ["f-0", "f-2"]
        assert caught.value.failed == ["f-1"]
        monkeypatch.undo()
        # failed, yet applied: the caller must not assume either way
        assert store.get_task("f-1").retry == 1
    else:
        with pytest.raises(StoreUnavailable) as caught:
            store.update_tasks(["f-0", "f-1", "f-2"], bump)
        assert not isinstance(caught.value, PartialUpdate)
        monkeypatch.undo()
        assert {t.retry for t in store.get_tasks(["f-0", "f-1", "f-2"]).values()} == {0}


def test_a_change_that_raises_reaches_the_caller(store):
    """The contract asks `change` not to raise; if it does, the exception
    reaches the caller (SQLite: nothing of the batch written)."""
    store.create_tasks([new("r-0"), new("r-1")])

    def change(task):
        if task.id == "r-1":
            raise RuntimeError("a bug in a change")
        return bump(task)
    with pytest.raises(RuntimeError):
        store.update_tasks(["r-0", "r-1"], change)
    if not is_riak(store):
        assert store.get_task("r-0").retry == 0


def test_delete_tasks_counts_and_spares_a_task_whose_status_moved(store):
    assert store.create_tasks([new("d1"), new("d2"), new("d3")]) == [None] * 3
    store.update_tasks(["d2"], lambda t: t.with_(status=T.DONE, rev=t.rev + 1))
    assert store.delete_tasks(["d1", "d2", "gone"], T.DONE) == 1   # d1 is todo: left alone
    assert store.get_task("d2") is None and store.get_task("d1") is not None
    assert store.delete_task("d1", T.DONE) is False and store.delete_task("d1") is True
    assert store.delete_tasks(["d1", "d3"]) == 1


def test_compact_reports_sizes_or_says_there_is_nothing_to_do(store):
    assert store.create_tasks([new(f"c{i}", b"y" * 2000) for i in range(200)]) == [None] * 200
    assert store.delete_tasks([f"c{i}" for i in range(200)]) == 200
    sizes = store.compact()
    assert sizes is None if type(store).__name__ == "RiakStore" else sizes[1] < sizes[0]
