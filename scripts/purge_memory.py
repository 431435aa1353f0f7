"""Benchmark: `purge` deletes in bounded memory; `vacuum` gives the space back.

For each size (default 10,000 and 100,000), fills a fresh SQLite store with
that many done tasks (report_memory.fill), then runs `riaktq purge --status
done --age 0s` in a subprocess and reads its peak RSS from `os.wait4`, then
`riaktq vacuum`, with the file sizes (database + WAL) at each step. Bounded
memory shows as the same peak RSS at both sizes.

    .venv/bin/python scripts/purge_memory.py [--tasks N]... [--dir DIR]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riaktq_cli.store.sqlite import SqliteStore  # noqa: E402
from scripts.report_memory import fill, riaktq_argv  # noqa: E402


def db_mb(db):
    return sum(os.path.getsize(p) for p in (db, f"{db}-wal") if os.path.exists(p)) / 1e6


def timed(config, *args):
    """(seconds, peak RSS in MB, stderr) of one riaktq command."""
    started = time.monotonic()
    proc = subprocess.Popen(riaktq_argv() + ["--config", str(config), *args], stderr=subprocess.PIPE)
    err = proc.stderr.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[0]} failed: {err}")
    return time.monotonic() - started, usage.ru_maxrss / 1024, err.strip()


def measure(work, count):
    db = work / f"purge-{count}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = work / f"purge-{count}.toml"
    config.write_text(f'[sqlite]\npath = "{db}"\n')
    store = SqliteStore(db)
    fill(store, count)
    store.close()
    filled = db_mb(db)
    took, rss, said = timed(config, "purge", "--status", "done", "--age", "0s")
    purged = db_mb(db)
    vacuum_took, _rss, _said = timed(config, "vacuum")
    print(f"{count} done tasks: purge {took:.2f}s, peak RSS {rss:.1f} MB ({said}); "
          f"store {filled:.1f} MB -> {purged:.1f} MB after purge -> {db_mb(db):.1f} MB after vacuum "
          f"({vacuum_took:.2f}s)")
    return rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, action="append")
    parser.add_argument("--dir", help="Work here instead of a temporary directory (kept).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riaktq-bench-") as tmp:
        work = Path(args.dir) if args.dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        peaks = [measure(work, count) for count in args.tasks or [10_000, 100_000]]
    verdict = "ok" if max(peaks) < 1.5 * min(peaks) + 5 else "FAIL"
    print(f"peak RSS {min(peaks):.1f}-{max(peaks):.1f} MB [{verdict}: flat across sizes]")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
