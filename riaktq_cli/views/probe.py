"""What `riaktq check` proves by doing: the store can be written, read and
deleted, and an embedded database file is sound.

Opening a store shows little: SQLite opens a corrupt or read-only file
without complaint until the first real query or write. So the SQLite probe
works on its own connection, never creating the file: `PRAGMA quick_check`
for corruption, then a write inside a transaction that is rolled back,
which fails on a read-only file or directory exactly as the queue's writes
would. The record probe then writes, reads back and deletes a record through
the store itself (both stores).
"""

import os
import socket

from riaktq_cli.core.errors import StoreError


def sqlite_file(path, busy_timeout=5.0):
    """Yield (ok, line) for the SQLite file at `path`; stop at the first ✗."""
    import sqlite3

    if not os.path.exists(path):
        yield False, f"sqlite {path}: no such file (`riaktq init`, `open`, `scheduler` or `worker` create it)"
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=busy_timeout, isolation_level=None)
    except sqlite3.Error as exc:
        yield False, f"sqlite {path}: cannot open it: {exc}"
        return
    try:
        try:
            result = [row[0] for row in db.execute("PRAGMA quick_check")]
        except sqlite3.Error as exc:
            readonly = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY
            what = "cannot write" if readonly else "not a sound database"
            yield False, f"sqlite {path}: {what}: {exc}"
            return
        if result != ["ok"]:
            yield False, f"sqlite {path}: quick_check found damage: {'; '.join(map(str, result[:3]))}"
            return
        yield True, f"sqlite {path}: quick_check ok"
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("CREATE TABLE IF NOT EXISTS riaktq_check_probe (x)")
                db.execute("INSERT INTO riaktq_check_probe VALUES (1)")
            finally:
                db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            yield False, f"sqlite {path}: cannot write: {exc}"
            return
        yield True, f"sqlite {path}: writable (a write in a rolled-back transaction)"
    finally:
        db.close()


def record_round_trip(store):
    """Yield one (ok, line): write, read back and delete a probe record."""
    from riaktq_cli.core.clock import now_us
    from riaktq_cli.store.base import SCHEDULER

    name = f"check-probe-{socket.gethostname()}-{os.getpid()}"
    doc = {"probe": now_us()}
    step = "write"
    try:
        store.put_record(SCHEDULER, name, doc)
        step = "read back"
        if store.get_record(SCHEDULER, name) != doc:
            yield False, "probe record: read back something else than was written"
            return
        step = "delete"
        store.delete_record(SCHEDULER, name)
        if store.get_record(SCHEDULER, name) is not None:
            yield False, "probe record: still there after delete"
            return
    except StoreError as exc:
        yield False, f"probe record: cannot {step} it: {exc}"
        return
    yield True, "probe record: written, read back and deleted"
