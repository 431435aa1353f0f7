"""`vacuum` while readers hold the embedded store: the truncating WAL
checkpoint answers "busy"; vacuum says so and exits 1 instead of claiming
"compacted 45.8 MB -> 85.1 MB" (issue 18, defect 9). SQLite only: Riak
compacts itself and `vacuum` has nothing to do there."""

import sqlite3

import pytest

from tests.test_control import db_bytes, finish, opened


@pytest.mark.parametrize("backend", ["sqlite"])
def test_vacuum_that_readers_keep_from_finishing_says_so(tmp_path, backend, procs, store):
    config = procs.config_file
    text = config.read_text().replace("[sqlite]\n", '[sqlite]\nbusy_timeout = "200ms"\n', 1)
    config.write_text(text)
    ids = opened(store, [f"big{i:03d}" for i in range(200)], days_old=31, data=b"z" * 4000)
    finish(store, ids)
    assert procs.run("purge", "--status", "done", "--age", "30d").returncode == 0
    reader = sqlite3.connect(store.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM tasks").fetchone()   # a read transaction held open
        busy = procs.run("vacuum")
    finally:
        reader.close()
    stderr = busy.stderr.decode()
    assert busy.returncode == 1, stderr
    assert "compacted" not in stderr and "readers" in stderr and "kept the WAL checkpoint" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    before = db_bytes(store.path)
    done = procs.run("vacuum")                                    # the readers gone: it finishes
    assert done.returncode == 0 and "compacted" in done.stderr.decode()
    assert db_bytes(store.path) < before
