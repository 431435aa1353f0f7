"""Benchmark: `report` streams, `stats` answers fast, with many tasks.

Fills a fresh SQLite store with N (default 100,000) done tasks through
`SqliteStore.create_tasks` in chunks, then

* runs `riaktq report --status done --format ids` in a subprocess, counts
  the lines it prints, and reads that process's peak RSS from `os.wait4`;
* times `riaktq stats --format json` (whole process, start-up included)
  over a few runs, and the figures' gathering alone, in this process.

    .venv/bin/python scripts/report_memory.py [--tasks N] [--runs K] [--dir DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riaktq_cli.core import task as transitions  # noqa: E402
from riaktq_cli.core.clock import now_us  # noqa: E402
from riaktq_cli.store.sqlite import SqliteStore  # noqa: E402

CHUNK = 10_000


def riaktq_argv():
    script = Path(sys.executable).parent / "riaktq"
    return [str(script)] if script.exists() else [sys.executable, "-m", "riaktq_cli"]


def fill(store, count):
    """`count` done tasks, created one ms apart over the last `count` ms."""
    start = now_us() - count * 1000 - 10_000_000
    for first in range(0, count, CHUNK):
        tasks = []
        for n in range(first, min(first + CHUNK, count)):
            cat = start + n * 1000
            task = transitions.new_task(f"task-{n:07d}", b"input %d" % n, now=cat)
            task = transitions.assign(task, "bench-1")
            task, _ = transitions.close(task, "bench-1", transitions.DONE, b"ok", cat + 500, 200)
            tasks.append(task)
        errors = store.create_tasks(tasks)
        if any(errors):
            raise SystemExit(f"could not store tasks: {next(e for e in errors if e)}")


def run_report(config):
    """(lines printed, peak RSS in MB, seconds) of `report --status done --format ids`."""
    argv = riaktq_argv() + ["--config", str(config), "report", "--status", "done", "--format", "ids"]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    lines = 0
    for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):
        lines += chunk.count(b"\n")
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"report exited {proc.returncode}")
    return lines, usage.ru_maxrss / 1024, took  # ru_maxrss is in KiB on Linux


def time_stats(config, runs):
    argv = riaktq_argv() + ["--config", str(config), "stats", "--format", "json"]
    times = []
    figures = None
    for _ in range(runs):
        started = time.monotonic()
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        times.append(time.monotonic() - started)
        figures = json.loads(out)
    return times, figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", help="Work here instead of a temporary directory (kept).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="riaktq-bench-") as tmp:
        work = Path(args.dir) if args.dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = work / "report.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        config = work / "riaktq.toml"
        config.write_text(f'[sqlite]\npath = "{db}"\n')

        store = SqliteStore(db)
        started = time.monotonic()
        fill(store, args.tasks)
        print(f"filled {args.tasks} done tasks in {time.monotonic() - started:.1f}s ({db})")

        lines, rss_mb, took = run_report(config)
        verdict = "ok" if lines == args.tasks and rss_mb < 100 else "FAIL"
        print(f"report --status done --format ids: {lines} lines in {took:.2f}s, "
              f"peak RSS {rss_mb:.1f} MB [{verdict}: {args.tasks} lines, < 100 MB]")

        times, figures = time_stats(config, args.runs)
        print(f"stats --format json (whole process, {args.runs} runs): "
              f"best {min(times):.3f}s, median {sorted(times)[len(times) // 2]:.3f}s, "
              f"worst {max(times):.3f}s; counts {figures['counts']}, closed last minute "
              f"{figures['closed_last_minute']}, last hour {figures['closed_last_hour']}")

        from riaktq_cli.api import figures
        gathered = []
        for _ in range(args.runs):
            started = time.monotonic()
            figures.gather(store, 30.0)
            gathered.append(time.monotonic() - started)
        print(f"figures.gather alone (in process): best {min(gathered) * 1000:.1f}ms, "
              f"worst {max(gathered) * 1000:.1f}ms")
        store.close()
        return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
