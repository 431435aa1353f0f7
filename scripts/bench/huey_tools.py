"""Running Huey beside riaktq: is it there, a fresh queue, its consumer.

Huey is installed by `make bench` (pip, into .venv); the benchmark itself
never installs anything, so a run without it reports the Huey rows as n/a
with the command that installs it.
"""

import os
import sys
import tempfile
from pathlib import Path

from scripts.bench.procs import PROCS

ROOT = Path(__file__).resolve().parents[2]
APP = "scripts.bench.huey_app"
INSTALL_HINT = f"huey is not installed: run `make bench`, or `{sys.executable} -m pip install huey`"


def huey_missing():
    """None when huey can be imported, else the one line saying how to get it."""
    try:
        import huey  # noqa: F401
        return None
    except ImportError:
        return INSTALL_HINT


def huey_env(db_path):
    env = dict(os.environ)
    env["RIAKTQ_BENCH_HUEY_DB"] = str(db_path)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def consumer(workdir, db_path, workers):
    """`huey_consumer -w K -k process` with its defaults otherwise."""
    argv = [sys.executable, "-m", "huey.bin.huey_consumer", f"{APP}.huey", "-w", str(workers), "-k", "process"]
    return PROCS.start(argv, cwd=workdir, log_path=Path(workdir) / "consumer.log", env=huey_env(db_path))


def fresh(root, tag):
    """(workdir, db path, huey, echo task) for a new, empty queue."""
    from scripts.bench import huey_app
    workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
    db = workdir / "huey.db"
    huey, echo = huey_app.make(str(db))
    return workdir, db, huey, echo


def raw_batch(huey, echo, n, batch=500):
    """Huey has no batch enqueue: serialize each message as huey.enqueue
    would and insert a batch per transaction straight into its table."""
    storage = huey.storage
    for start in range(0, n, batch):
        blobs = [huey.serialize_task(echo.s(b"x")) for _ in range(min(batch, n - start))]
        with storage.db(commit=True) as curs:
            curs.executemany("insert into task (queue, data, priority) values (?, ?, ?)",
                             [(storage.name, storage.to_blob(b), 0) for b in blobs])
