"""The task schema (task.FIELDS, task_schema.py): what is derived from the
one declaration holds on both stores, and what riaktq wrote before the
schema was declared (main at d9dadea) still reads, and is written the same.

The round trip below builds its values from each field's declared kind, so
a field added to FIELDS is covered by it with no change here.
"""

import json
import re
import sqlite3

import pytest

from riaktq_cli.core import task as T
from riaktq_cli.core import task_schema as schema
from riaktq_cli.store.riak_terms import task_indexes
from riaktq_cli.store.sqlite import ENDED, SqliteStore

# One task as riaktq wrote it before the declaration (a nextup task marked
# for cancellation, with a restart behind it, binary input): its Riak value,
# its JSON views and its SQLite row, exactly as that code produced them.
TODAY = T.Task(id="today", status="nextup", priority=-5, retry=1, assignee="w-2", in_=b"in\xffput", out=b"boom",
               sat=1700000000000200, laf=300, cat=1700000000000000, tags=("gpu", "x"), rev=7, run=2, lost=0,
               max_attempts=5, time_limit=90.0, due=None, retry_delay=2.5,
               history=((1700000000000100, "assign", "w-1", 1, None), (1700000000000600, "restart", "w-1", 1, "boom"),
                        (1700000000002000, "assign", "w-2", 2, None)), cancel="enough", inc="0123456789abcdef")
TODAY_DOC = ('{"id":"today","status":"nextup","priority":-5,"retry":1,"assignee":"w-2","in":"aW7/cHV0",'
             '"out":"Ym9vbQ==","sat":1700000000000200,"laf":300,"cat":1700000000000000,"tags":["gpu","x"],'
             '"rev":7,"run":2,"lost":0,"max_attempts":5,"time_limit":90.0,"due":null,"retry_delay":2.5,'
             '"history":[[1700000000000100,"assign","w-1",1,null],[1700000000000600,"restart","w-1",1,"boom"],'
             '[1700000000002000,"assign","w-2",2,null]],"cancel":"enough","inc":"0123456789abcdef"}')
TODAY_VIEW = ('{"id": "today", "status": "nextup", "priority": -5, "retry": 1, "assignee": "w-2", "in": {"base64":'
              ' "aW7/cHV0"}, "out": "boom", "sat": 1700000000000200, "laf": 300, "cat": 1700000000000000, "tags":'
              ' ["gpu", "x"], "rev": 7, "run": 2, "lost": 0, "max_attempts": 5, "time_limit": 90.0, "due": null,'
              ' "retry_delay": 2.5, "cancel": "enough", "inc": "0123456789abcdef"}')
TODAY_HISTORY_VIEW = (
    '[{"at": 1700000000000100, "transition": "assign", "instance": "w-1", "run": 1, "reason": null},'
    ' {"at": 1700000000000600, "transition": "restart", "instance": "w-1", "run": 1, "reason": "boom"},'
    ' {"at": 1700000000002000, "transition": "assign", "instance": "w-2", "run": 2, "reason": null}]')
# The tasks table and its indexes as that code made them.
TODAY_TABLE = """
CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT NOT NULL, priority INTEGER NOT NULL, retry INTEGER NOT NULL,
    assignee TEXT, in_ BLOB NOT NULL, out BLOB, sat INTEGER, laf INTEGER, cat INTEGER NOT NULL, tags TEXT NOT NULL,
    rev INTEGER NOT NULL, run INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER,
    time_limit REAL, due INTEGER, retry_delay REAL, history TEXT, cancel TEXT, inc TEXT);
CREATE INDEX tasks_ready_order ON tasks (priority DESC, cat, id) WHERE status = 'todo' AND due IS NULL;
CREATE INDEX tasks_ready_by_tags ON tasks (tags, priority DESC, cat, id) WHERE status = 'todo' AND due IS NULL;
CREATE INDEX tasks_waiting ON tasks (due, id) WHERE status = 'todo' AND due IS NOT NULL;
CREATE INDEX tasks_status_cat ON tasks (status, cat);
CREATE INDEX tasks_cat ON tasks (cat);
CREATE INDEX tasks_ended ON tasks (status, coalesce(json_extract(history, '$[#-1][0]'), sat + laf))
    WHERE status IN ('done', 'failed');
CREATE TABLE records (kind TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, name))
    WITHOUT ROWID;
INSERT INTO tasks VALUES ('today', 'nextup', -5, 1, 'w-2', X'696eff707574', X'626f6f6d', 1700000000000200, 300,
    1700000000000000, '["gpu", "x"]', 7, 2, 0, 5, 90.0, NULL, 2.5, '[[1700000000000100,"assign","w-1",1,null],'
    || '[1700000000000600,"restart","w-1",1,"boom"],[1700000000002000,"assign","w-2",2,null]]', 'enough',
    '0123456789abcdef');
INSERT INTO tasks VALUES ('plain', 'todo', 0, 0, NULL, X'', NULL, NULL, NULL, 5, '[]', 1, 0, 0, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL);
"""


def today_keys(view, expected_text):
    """`view` cut to the keys of `expected_text` (a field declared since
    adds its key, with its default), as JSON text in the view's order."""
    expected = json.loads(expected_text)
    later = {f.json: f.default for f in T.FIELDS if f.json not in expected and f.view == schema.SHOWN}
    assert {k: v for k, v in view.items() if k not in expected} == later
    return {k: v for k, v in view.items() if k in expected}


def test_a_document_of_todays_code_reads_and_is_written_the_same():
    task = T.Task.from_record(json.loads(TODAY_DOC))
    assert task == TODAY
    written = today_keys(task.to_record(), TODAY_DOC)
    assert json.dumps(written, separators=(",", ":")) == TODAY_DOC   # the same bytes on Riak
    assert json.dumps(today_keys(task.to_view(), TODAY_VIEW), ensure_ascii=False) == TODAY_VIEW
    with_history = task.to_view(history=True)
    assert list(with_history) == [f.json for f in T.FIELDS]          # the history in its place
    assert json.dumps(with_history.pop("history"), ensure_ascii=False) == TODAY_HISTORY_VIEW


def test_a_document_missing_a_required_field_is_not_a_task():
    for field in T.FIELDS:
        doc = json.loads(TODAY_DOC)
        doc.pop(field.json, None)
        if field.required:
            with pytest.raises(KeyError):
                T.Task.from_record(doc)
        else:       # a value written before the field existed: its default
            assert getattr(T.Task.from_record(doc), field.name) == field.default, field


def table_shape(db):
    """(name, type, not null, primary key) of each column, and the index names."""
    columns = [tuple(row[1:4]) + (row[5],) for row in db.execute("PRAGMA table_info(tasks)")]
    return columns, sorted(row[1] for row in db.execute("PRAGMA index_list(tasks)"))


def test_a_database_of_todays_code_opens_reads_and_takes_transitions(tmp_path):
    old = tmp_path / "today.db"
    db = sqlite3.connect(old)
    db.executescript(TODAY_TABLE)
    db.close()
    store = SqliteStore(old)
    assert store.get_task("today") == TODAY
    assert [t.id for t in store.iter_todo()] == ["plain"]
    assert store.get_task("plain") == T.Task("plain", cat=5, rev=1)
    store.update_tasks(["today"], lambda t: T.rollback(t)[0])     # cancelled while it ran: failed
    ended = store.get_task("today")
    assert (ended.status, ended.out, ended.in_) == ("failed", b"cancelled: enough", b"in\xffput")
    assert store.count_finished_since(0) == 1
    fresh = SqliteStore(tmp_path / "fresh.db")
    assert table_shape(store._db) == table_shape(fresh._db)
    plan = " ".join(row[-1] for row in store._db.execute(
        f"EXPLAIN QUERY PLAN SELECT count(*) FROM tasks WHERE status IN ('done', 'failed') AND {ENDED} >= 0"))
    assert "USING INDEX tasks_ended" in plan, plan        # the migrated file keeps today's query plans


def test_a_database_of_the_first_release_gains_every_declared_column(tmp_path):
    path = tmp_path / "first.db"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT NOT NULL, priority INTEGER NOT NULL,
        retry INTEGER NOT NULL, assignee TEXT, in_ BLOB NOT NULL, out BLOB, sat INTEGER, laf INTEGER,
        cat INTEGER NOT NULL, tags TEXT NOT NULL, rev INTEGER NOT NULL);
        INSERT INTO tasks VALUES ('old', 'done', 3, 0, 'w', X'78', X'79', 10, 2, 7, '["a"]', 4);""")
    db.close()
    store = SqliteStore(path)
    assert [name for name, *_ in table_shape(store._db)[0]] == list(T.NAMES)
    assert table_shape(store._db)[0] == table_shape(SqliteStore(tmp_path / "fresh.db")._db)[0]
    assert store.get_task("old") == T.Task("old", status="done", priority=3, assignee="w", in_=b"x", out=b"y",
                                           sat=10, laf=2, cat=7, tags=("a",), rev=4)


def sample(field, n):
    """A value of `field`'s declared kind, different for each n."""
    kind = field.kind
    if kind is schema.BYTES:
        return bytes([0xff, n]) + field.name.encode()        # not UTF-8: the view's base64 form
    if kind is schema.TAGS:
        return (f"t{n}", "u")
    if kind is schema.HISTORY:
        return ((n, "assign", "w", n, f"why {n}"),)
    if kind is schema.INTEGER:
        return 1000 * n + T.NAMES.index(field.name)
    if kind is schema.REAL:
        return n + 0.5
    return f"{field.name}-{n}"


def sampled(n, status, keep=None):
    """A task with a value of its own in every field (`keep`'s fixed ones)."""
    values = {f.name: sample(f, n) for f in T.FIELDS}
    if keep is not None:
        values.update({f.name: getattr(keep, f.name) for f in T.FIELDS if f.fixed})
    values.update(id="every-field", status=status)
    return T.Task(**values)


def test_every_declared_field_round_trips_through_the_store_and_the_view(store):
    first = sampled(1, T.NEXTUP)
    assert store.create_tasks([first]) == [None]
    assert store.get_task(first.id) == first
    second = sampled(2, T.DONE, keep=first)          # a transition changes every field but the fixed ones
    assert [new for _, new in store.update_tasks([first.id], lambda _old: second)] == [second]
    assert store.get_task(first.id) == second
    assert T.Task.from_record(json.loads(json.dumps(second.to_record()))) == second
    view = json.loads(json.dumps(second.to_view(history=True)))
    for field in T.FIELDS:
        value = getattr(second, field.name)
        shown = view[field.json]
        if field.kind is schema.BYTES:
            assert T.view_to_bytes(shown) == value, field
        elif field.kind is schema.HISTORY:
            assert [list(e.values()) for e in shown] == [list(e) for e in value], field
        else:
            assert shown == (list(value) if field.kind is schema.TAGS else value), field
    assert [f.json for f in T.FIELDS if f.view == schema.SHOWN] == list(second.to_view())


def index_text():
    """The SQL of every index the SQLite store makes on tasks."""
    from riaktq_cli.store.sqlite import SCHEMA
    return " ".join(re.findall(r"CREATE INDEX[^;]*", SCHEMA))


def riak_terms_change(field):
    """True if changing `field` changes the Riak index terms of a task in
    some state (todo ready or waiting, nextup, finished with or without a
    history)."""
    states = [T.Task("a", tags=("x",)), T.Task("a", due=5), T.Task("a", status=T.NEXTUP, assignee="w"),
              T.Task("a", status=T.DONE, history=((9, "close", "w", 1, None),)),
              T.Task("a", status=T.FAILED, sat=3, laf=4)]
    changed = sample(field, 7)
    return any(task_indexes(task) != task_indexes(task.with_(**{field.name: changed})) for task in states)


def test_a_field_is_declared_indexed_when_and_only_when_an_index_reads_it():
    sql = index_text()
    for field in T.FIELDS:
        in_sqlite = re.search(rf"\b{field.name}\b", sql) is not None
        assert field.indexed == (in_sqlite or riak_terms_change(field)), field


def test_new_task_checks_each_declared_bound():
    for field in T.FIELDS:
        if field.bounds is not None:
            low, high = field.bounds
            for bad in (low - 1, high + 1):
                with pytest.raises(T.TransitionError, match="out of range"):
                    T.new_task("t", b"", now=1, **{field.name: bad})
            assert getattr(T.new_task("t", b"", now=1, **{field.name: high}), field.name) == high


def every_transition(waiting):
    """The tasks each transition makes from `waiting` (a todo task due at 5) on."""
    yield (ready := T.release(waiting, 6))
    yield (running := T.assign(ready, "w", now=7))
    yield T.close(running, "w", T.DONE, b"ok", 7, 1, now=8)[0]
    yield (restarted := T.close(running.with_(retry=1), "w", T.FAILED, b"no", 7, 1, now=8, delay_us=5)[0])
    yield T.rollback(running, now=9)[0]
    yield T.rollback(running, counted=True, default_max_attempts=1, why="gone", now=9)[0]
    yield T.requeue(T.close(running, "w", T.FAILED, b"no", 7, 1, now=8)[0], retry=2, now=10)
    yield T.cancel(restarted, "stop", now=11)
    yield (marked := T.cancel(running, "stop", now=11))
    yield T.cancelled(marked, now=12)[0]


def test_no_transition_changes_a_field_declared_fixed():
    """The SQLite UPDATE leaves fixed fields out: a transition that changed
    one would change it on Riak only."""
    fixed = [f.name for f in T.FIELDS if f.fixed]
    opened = T.new_task("t", b"x", now=1, due=5, tags=("a",))
    assert opened.inc is not None
    for made in every_transition(opened):
        assert [getattr(made, name) for name in fixed] == [getattr(opened, name) for name in fixed], made
