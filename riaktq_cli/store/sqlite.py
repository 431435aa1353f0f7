"""The embedded store: one SQLite file shared by many processes on one machine.

WAL mode lets readers run beside the one writer; every transition is one
short `BEGIN IMMEDIATE` transaction, so two processes never both read a
task and then both write it (no lost updates). The indexes make "next todo
tasks in order" and "status X created before T" index range scans.
"""

import _thread
import sqlite3

from riaktq_cli import history
from riaktq_cli.errors import DuplicateTask, StoreError, StoreUnavailable
from riaktq_cli.store.base import LEASE_NAME, SCHEDULER, Store
from riaktq_cli.task import STATUSES, Task

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    retry INTEGER NOT NULL,
    assignee TEXT,
    in_ BLOB NOT NULL,
    out BLOB,
    sat INTEGER,
    laf INTEGER,
    cat INTEGER NOT NULL,
    tags TEXT NOT NULL,
    rev INTEGER NOT NULL,
    run INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    time_limit REAL,
    due INTEGER,
    retry_delay REAL,
    history TEXT,
    cancel TEXT,
    inc TEXT
);
-- Only ready tasks (todo, not waiting for a due time) are in the todo
-- order, so a backlog of delayed tasks costs the scheduler no scan; those
-- wait in tasks_waiting until the scheduler clears their due time.
DROP INDEX IF EXISTS tasks_todo_order;
DROP INDEX IF EXISTS tasks_todo_by_tags;
CREATE INDEX IF NOT EXISTS tasks_ready_order ON tasks (priority DESC, cat, id)
    WHERE status = 'todo' AND due IS NULL;
CREATE INDEX IF NOT EXISTS tasks_ready_by_tags ON tasks (tags, priority DESC, cat, id)
    WHERE status = 'todo' AND due IS NULL;
CREATE INDEX IF NOT EXISTS tasks_waiting ON tasks (due, id) WHERE status = 'todo' AND due IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_status_cat ON tasks (status, cat);
CREATE INDEX IF NOT EXISTS tasks_cat ON tasks (cat);
-- Finished tasks by the moment they ended (task.ended_at: the time of the
-- transition that finished them, else sat + laf); ENDED repeats it.
DROP INDEX IF EXISTS tasks_finished;
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (status, coalesce(json_extract(history, '$[#-1][0]'), sat + laf))
    WHERE status IN ('done', 'failed');
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
"""

COLUMNS = ("id, status, priority, retry, assignee, in_, out, sat, laf, cat, tags, rev, run, lost, max_attempts,"
           " time_limit, due, retry_delay, history, cancel, inc")
MARKS = ",".join("?" * len(COLUMNS.split(",")))
# Columns added after the first release, for databases made before them.
ADDED_COLUMNS = (("run", "INTEGER NOT NULL DEFAULT 0"), ("lost", "INTEGER NOT NULL DEFAULT 0"),
                 ("max_attempts", "INTEGER"), ("time_limit", "REAL"), ("due", "INTEGER"),
                 ("retry_delay", "REAL"), ("history", "TEXT"), ("cancel", "TEXT"), ("inc", "TEXT"))
ENDED = "coalesce(json_extract(history, '$[#-1][0]'), sat + laf)"   # task.ended_at, as tasks_ended has it
READY = "status = 'todo' AND due IS NULL"   # repeats the partial indexes' WHERE, so SQLite uses them


def _row_to_task(row):
    return Task(id=row[0], status=row[1], priority=row[2], retry=row[3], assignee=row[4],
                in_=bytes(row[5]), out=None if row[6] is None else bytes(row[6]),
                sat=row[7], laf=row[8], cat=row[9], tags=_tags_from_text(row[10]), rev=row[11],
                run=row[12], lost=row[13], max_attempts=row[14], time_limit=row[15], due=row[16],
                retry_delay=row[17], history=history.from_text(row[18]), cancel=row[19], inc=row[20])


def _task_to_row(t):
    return (t.id, t.status, t.priority, t.retry, t.assignee, t.in_, t.out,
            t.sat, t.laf, t.cat, _tags_to_text(t.tags), t.rev, t.run, t.lost, t.max_attempts, t.time_limit,
            t.due, t.retry_delay, history.to_text(t.history), t.cancel, t.inc)


# Tags are stored as a JSON list. Most tasks have none; for those the
# literal "[]" spares `riaktq open` the import of json (and of re behind it).
def _tags_to_text(tags):
    if not tags:
        return "[]"
    import json
    return json.dumps(list(tags))


def _tags_from_text(text):
    if text == "[]":
        return ()
    import json
    return tuple(json.loads(text))


class SqliteStore(Store):
    """Store on one SQLite file; safe for many processes and threads."""

    def __init__(self, path, busy_timeout=30.0):
        self.path = str(path)
        self._lock = _thread.RLock()  # _thread: threading costs start-up time
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"sqlite {self.path}: cannot switch to WAL mode (got {mode})")
            # NORMAL in WAL mode survives any process crash; only a power
            # loss can drop the last transactions.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from None

    def _migrate(self):
        """Add the columns a database made by an older riaktq lacks."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        if have:
            for name, decl in ADDED_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {decl}")

    # --- plumbing ----------------------------------------------------------
    def _write(self, work):
        """Run work(db) in one IMMEDIATE transaction (the write lock first,
        so read-then-write cannot interleave with another process)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from None

    def _read(self, sql, params=()):
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from None

    # --- tasks -------------------------------------------------------------
    def create_tasks(self, tasks):
        def work(db):
            errors = []
            for task in tasks:
                try:
                    db.execute(f"INSERT INTO tasks ({COLUMNS}) VALUES ({MARKS})",
                               _task_to_row(task))
                    errors.append(None)
                except sqlite3.IntegrityError:
                    errors.append(DuplicateTask(task.id))
            return errors
        return self._write(work)

    def get_task(self, task_id):
        rows = self._read(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return _row_to_task(rows[0]) if rows else None

    def get_tasks(self, task_ids):
        found = {}
        ids = list(task_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._read(f"SELECT {COLUMNS} FROM tasks WHERE id IN ({marks})", chunk):
                found[row[0]] = _row_to_task(row)
        return found

    def delete_task(self, task_id, status=None):
        return self.delete_tasks([task_id], status) > 0

    def delete_tasks(self, task_ids, status=None):
        ids = list(task_ids)
        where = " AND status = ?" if status is not None else ""

        def work(db):
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                params = chunk + ([status] if status is not None else [])
                sql = f"DELETE FROM tasks WHERE id IN ({','.join('?' * len(chunk))}){where}"
                removed += db.execute(sql, params).rowcount
            return removed
        return self._write(work) if ids else 0

    def update_tasks(self, task_ids, change):
        ids = list(dict.fromkeys(task_ids))

        def work(db):
            # One SELECT per 500 ids and one executemany UPDATE, all in one
            # transaction: the scheduler moves a whole batch per write lock.
            found = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for row in db.execute(f"SELECT {COLUMNS} FROM tasks WHERE id IN ({marks})", chunk):
                    found[row[0]] = _row_to_task(row)
            written = []
            for task_id in ids:
                old = found.get(task_id)
                new = change(old) if old is not None else None
                if new is not None:
                    written.append((old, new))
            db.executemany("UPDATE tasks SET status=?, priority=?, retry=?, assignee=?, out=?,"
                           " sat=?, laf=?, tags=?, rev=?, run=?, lost=?, max_attempts=?, time_limit=?,"
                           " due=?, retry_delay=?, history=?, cancel=? WHERE id=?",
                           [(n.status, n.priority, n.retry, n.assignee, n.out, n.sat, n.laf,
                             _tags_to_text(n.tags), n.rev, n.run, n.lost, n.max_attempts, n.time_limit,
                             n.due, n.retry_delay, history.to_text(n.history), n.cancel, n.id) for _, n in written])
            return written
        return self._write(work)

    def iter_todo(self, page_size=100, tags=None):
        # INDEXED BY: without statistics the planner prefers tasks_status_cat
        # and sorts every todo task, delayed ones included; this way a query
        # that could not use the partial index fails instead of scanning.
        where, params = f"tasks INDEXED BY tasks_ready_order WHERE {READY}", []
        if tags is not None:
            where = f"tasks INDEXED BY tasks_ready_by_tags WHERE {READY} AND tags = ?"
            params = [_tags_to_text(tags)]
        rows = self._read(f"SELECT {COLUMNS} FROM {where}"
                          " ORDER BY priority DESC, cat, id LIMIT ?", (*params, page_size))
        while rows:
            yield from (_row_to_task(r) for r in rows)
            if len(rows) < page_size:
                return
            last = rows[-1]
            prio, cat, tid = last[2], last[9], last[0]
            rows = self._read(
                f"SELECT {COLUMNS} FROM {where} AND"
                " (priority < ? OR (priority = ? AND (cat > ? OR (cat = ? AND id > ?))))"
                " ORDER BY priority DESC, cat, id LIMIT ?",
                (*params, prio, prio, cat, cat, tid, page_size))

    def todo_tagsets(self):
        after = ""
        while True:
            # one seek in tasks_ready_by_tags per distinct tag set
            rows = self._read(f"SELECT min(tags) FROM tasks INDEXED BY tasks_ready_by_tags"
                              f" WHERE {READY} AND tags > ?", (after,))
            if not rows or rows[0][0] is None:
                return
            after = rows[0][0]
            yield _tags_from_text(after)

    def due_tasks(self, start=0, end=None, limit=500):
        return [(due, task_id) for due, task_id in self._read(
            "SELECT due, id FROM tasks INDEXED BY tasks_waiting WHERE status = 'todo' AND due IS NOT NULL"
            " AND due >= ? AND due <= ? ORDER BY due, id LIMIT ?",
            (start, (1 << 63) - 1 if end is None else end, limit))]

    def nextup_states(self):
        return [(r[0], r[1], bool(r[2])) for r in self._read(
            "SELECT id, assignee, cancel IS NOT NULL FROM tasks WHERE status = 'nextup'")]

    def iter_ids(self, status=None, created_before=None, page_size=1000):
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if created_before is not None:
            where.append("cat < ?")
            params.append(created_before)
        after = None
        while True:
            clause = list(where)
            page_params = list(params)
            if after is not None:
                # `cat >= ?` first, so each page starts where the last ended
                # in the index instead of rescanning it from the beginning.
                clause.append("cat >= ? AND (cat > ? OR id > ?)")
                page_params += [after[0], after[0], after[1]]
            sql = "SELECT id, cat FROM tasks"
            if clause:
                sql += " WHERE " + " AND ".join(clause)
            sql += " ORDER BY cat, id LIMIT ?"
            rows = self._read(sql, page_params + [page_size])
            for task_id, _cat in rows:
                yield task_id
            if len(rows) < page_size:
                return
            after = (rows[-1][1], rows[-1][0])

    def count_by_status(self):
        counts = dict.fromkeys(STATUSES, 0)
        for status in STATUSES:
            counts[status] = self._read("SELECT count(*) FROM tasks WHERE status = ?", (status,))[0][0]
        return counts

    def oldest_cat(self, status):
        rows = self._read("SELECT min(cat) FROM tasks WHERE status = ?", (status,))
        return rows[0][0]

    # --- records -------------------------------------------------------------
    def get_record(self, kind, name):
        import json
        rows = self._read("SELECT doc FROM records WHERE kind = ? AND name = ?", (kind, name))
        return json.loads(rows[0][0]) if rows else None

    def put_record(self, kind, name, doc):
        import json
        text = json.dumps(doc, separators=(",", ":"))
        self._write(lambda db: db.execute(
            "INSERT OR REPLACE INTO records (kind, name, doc) VALUES (?, ?, ?)", (kind, name, text)))

    def delete_record(self, kind, name):
        self._write(lambda db: db.execute("DELETE FROM records WHERE kind = ? AND name = ?", (kind, name)))

    def list_records(self, kind):
        import json
        return {name: json.loads(doc) for name, doc in
                self._read("SELECT name, doc FROM records WHERE kind = ?", (kind,))}

    # --- lease ---------------------------------------------------------------
    # One IMMEDIATE transaction reads and writes the lease: SQLite is its own
    # compare-and-set, so a takeover needs no settle time (lease.py).
    def read_lease(self):
        doc = self.get_record(SCHEDULER, LEASE_NAME)
        return [doc] if doc else []

    def swap_lease(self, choose):
        import json

        def work(db):
            row = db.execute("SELECT doc FROM records WHERE kind = ? AND name = ?",
                             (SCHEDULER, LEASE_NAME)).fetchone()
            copies = [json.loads(row[0])] if row else []
            doc = choose(copies)
            if doc is None:
                return copies
            db.execute("INSERT OR REPLACE INTO records (kind, name, doc) VALUES (?, ?, ?)",
                       (SCHEDULER, LEASE_NAME, json.dumps(doc)))
            return [doc]
        return self._write(work)

    def data_version(self):
        return self._read("PRAGMA data_version")[0][0]

    def check(self):
        yield True, f"sqlite {self.path}: open, WAL mode"
        counts = self.count_by_status()
        yield True, "tasks: " + ", ".join(f"{k} {v}" for k, v in counts.items())

    def close(self):
        with self._lock:
            self._db.close()

    def compact(self):
        """VACUUM and a truncating WAL checkpoint (sqlite_compact.py)."""
        from riaktq_cli.store.sqlite_compact import compact
        with self._lock:
            return compact(self._db, self.path)

    def count_finished_since(self, since_us, status=None):
        # The partial index `tasks_ended` holds only finished tasks, keyed
        # by (status, ENDED); repeating its WHERE and expression lets SQLite use it.
        sql = f"SELECT count(*) FROM tasks WHERE status IN ('done', 'failed') AND {ENDED} >= ?"
        params = [since_us]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return self._read(sql, params)[0][0]
