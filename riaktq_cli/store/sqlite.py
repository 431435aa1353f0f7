"""The embedded store: one SQLite file shared by many processes on one machine.

WAL mode lets readers run beside the one writer; every transition is one
short `BEGIN IMMEDIATE` transaction, so two processes never both read a
task and then both write it (no lost updates). The indexes make "next todo
tasks in order" and "status X created before T" index range scans.
"""

import _thread
import sqlite3
from operator import itemgetter

from riaktq_cli.core.errors import DuplicateTask, StoreError, StoreUnavailable
from riaktq_cli.store.base import LEASE_NAME, SCHEDULER, Store
from riaktq_cli.core.task import FIELDS, NAMES, STATUSES, Task, field_values
from riaktq_cli.core.task_schema import column_type, tags_from_text, tags_to_text

# The tasks table has one column per declared field (task.FIELDS), in their
# order: a database written by an older riaktq gains the columns it lacks
# (_migrate), no row is rewritten, and the indexes below read plain columns.
TABLE = ("CREATE TABLE IF NOT EXISTS tasks (\n"
         + ",\n".join(f"    {f.name} {column_type(f)}" for f in FIELDS) + "\n);\n")
SCHEMA = TABLE + """-- Only ready tasks (todo, not waiting for a due time) are in the todo
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

COLUMNS = ", ".join(NAMES)
MARKS = ",".join("?" * len(NAMES))
# The UPDATE of a transition: every field but those set once, at open.
CHANGING = tuple(i for i, f in enumerate(FIELDS) if not f.fixed)
UPDATE = f"UPDATE tasks SET {', '.join(NAMES[i] + '=?' for i in CHANGING)} WHERE id=?"
_update_params = itemgetter(*CHANGING, NAMES.index("id"))     # of a row
PRIORITY, CAT, ID = (NAMES.index(name) for name in ("priority", "cat", "id"))    # columns read by position
# (index, decode, value of NULL) and (index, encode) of the columns a codec maps
_DECODED = tuple((i, f.kind.from_column, f.default) for i, f in enumerate(FIELDS) if f.kind.from_column)
_ENCODED = tuple((i, f.kind.to_column) for i, f in enumerate(FIELDS) if f.kind.to_column)
ENDED = "coalesce(json_extract(history, '$[#-1][0]'), sat + laf)"   # task.ended_at, as tasks_ended has it
READY = "status = 'todo' AND due IS NULL"   # repeats the partial indexes' WHERE, so SQLite uses them


def _row_to_task(row):
    values = list(row)
    for i, decode, null in _DECODED:
        value = values[i]
        values[i] = null if value is None else decode(value)
    return Task(*values)


def _task_to_row(task):
    values = list(field_values(task))
    for i, encode in _ENCODED:
        if values[i] is not None:
            values[i] = encode(values[i])
    return values


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
        """Add the columns a database made by an older riaktq lacks: every
        declared field it has no column for (column_type gives each NOT
        NULL column a DEFAULT, which its existing rows take)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        if have:
            for field in FIELDS:
                if field.name not in have:
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {field.name} {column_type(field)}")

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
                found[row[ID]] = _row_to_task(row)
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
                    found[row[ID]] = _row_to_task(row)
            written = []
            for task_id in ids:
                old = found.get(task_id)
                new = change(old) if old is not None else None
                if new is not None:
                    written.append((old, new))
            db.executemany(UPDATE, [_update_params(_task_to_row(new)) for _, new in written])
            return written
        return self._write(work)

    def iter_todo(self, page_size=100, tags=None):
        # INDEXED BY: without statistics the planner prefers tasks_status_cat
        # and sorts every todo task, delayed ones included; this way a query
        # that could not use the partial index fails instead of scanning.
        where, params = f"tasks INDEXED BY tasks_ready_order WHERE {READY}", []
        if tags is not None:
            where = f"tasks INDEXED BY tasks_ready_by_tags WHERE {READY} AND tags = ?"
            params = [tags_to_text(tags)]
        rows = self._read(f"SELECT {COLUMNS} FROM {where}"
                          " ORDER BY priority DESC, cat, id LIMIT ?", (*params, page_size))
        while rows:
            yield from (_row_to_task(r) for r in rows)
            if len(rows) < page_size:
                return
            last = rows[-1]
            prio, cat, tid = last[PRIORITY], last[CAT], last[ID]
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
            yield tags_from_text(after)

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
