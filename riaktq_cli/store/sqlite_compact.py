"""Giving an SQLite store's free space back: `riaktq vacuum` (SqliteStore.compact).

VACUUM rewrites the file without its free pages (into the WAL, in WAL
mode); the truncating checkpoint then copies it back and cuts the WAL to
zero bytes. Both wait for other connections' readers (up to busy_timeout).
A checkpoint that readers kept from finishing answers "busy" rather than
failing: it is tried CHECKPOINT_TRIES times, then Refused (exit 1) says so
-- the space stays in the WAL until a checkpoint completes, so saying
"compacted 45.8 MB -> 85.1 MB" would be untrue.
"""

import os
import sqlite3

from riaktq_cli.core.backoff import Backoff
from riaktq_cli.core.errors import Refused, StoreUnavailable

CHECKPOINT_TRIES = 3     # truncating checkpoints tried while readers keep it busy
CHECKPOINT_PAUSE = 0.5   # seconds before the second try (then twice that)


def compact(db, path):
    """(bytes before, bytes after) of the file and its WAL; Refused when
    readers kept the checkpoint busy, StoreUnavailable on an error."""
    before = size(path)
    try:
        db.execute("VACUUM")
        pauses = Backoff(CHECKPOINT_PAUSE, 2 * CHECKPOINT_PAUSE, attempts=CHECKPOINT_TRIES)
        while True:
            busy, _frames, _copied = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return before, size(path)
            if not pauses.retry():
                break
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"sqlite {path}: {exc}") from None
    raise Refused(f"vacuum did not finish: readers of {path} kept the WAL checkpoint from completing"
                  f" ({CHECKPOINT_TRIES} tries); the file is {size(path) / 1e6:.1f} MB (was {before / 1e6:.1f} MB)"
                  " until one completes: run it again when fewer processes read the store")


def size(path):
    """Bytes of the database file and its WAL."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
