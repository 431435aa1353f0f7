"""Where each Riak request of a task comes from: a diagnosis, not a figure.

The same run as the `requests` workload (M tasks opened in batches of 500,
then a scheduler and K echo workers at prefetch 8 until every task is
committed), with a trace hook (trace_hook/sitecustomize.py) in the
scheduler and worker processes that logs each request the riaktq client
makes with the riaktq functions that asked for it. Prints requests per
task by process, kind, record kind and caller, and the node's own /stats
totals beside them so the two can be checked against each other.

    python -m scripts.bench.request_sources [--tasks 1000] [--workers 4]
        [--prefetch 8] [--interval 100ms] [--poll 100ms] [--riak-url URL]
"""

import argparse
import collections
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from scripts.bench.procs import PROCS, fmt_ms, wait_until
from scripts.bench.results import RIAK
from scripts.bench.riak_http import counters_delta
from scripts.bench.sites import RiakTarget, Workspace, fill

HOOK = Path(__file__).resolve().parent / "trace_hook"


class _Ctx:
    def __init__(self, root, target):
        self.root, self.riak = root, target


def main(argv=None):
    from riaktq_cli.core.durations import parse_duration
    p = argparse.ArgumentParser(prog="python -m scripts.bench.request_sources", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--prefetch", default="8")
    p.add_argument("--interval", default="100ms")
    p.add_argument("--poll", default="100ms")
    p.add_argument("--riak-url")
    p.add_argument("--bucket-type", default="riaktq")
    a = p.parse_args(argv)
    parse_duration(a.interval, "--interval")
    root = Path(tempfile.mkdtemp(prefix="riaktq-trace-"))
    trace = root / "trace"
    trace.mkdir()
    ws = Workspace(_Ctx(root, RiakTarget(a.riak_url, a.bucket_type)), RIAK, "trace")
    env = dict(os.environ, RIAKTQ_TRACE_DIR=str(trace),
               PYTHONPATH=os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH")])))
    events = ws.dir / "events.jsonl"
    events.touch()
    m = a.tasks
    try:
        start = ws.counters()
        fill(ws, m)
        opened = ws.counters()
        sched = PROCS.start(ws.cli("scheduler", "--interval", a.interval, "--prefetch", a.prefetch,
                                   "--events", str(events)), cwd=ws.dir, log_path=ws.dir / "sched.log", env=env)
        workers = PROCS.start(ws.cli("worker", "--handler", "echo", "--count", str(a.workers), "--poll", a.poll),
                              cwd=ws.dir, log_path=ws.dir / "workers.log", env=env)
        try:
            t0 = time.perf_counter()
            wait_until(lambda: events.read_text().count('"close"') >= m, 60 + m, f"{m} tasks committed",
                       alive={"scheduler": sched, "workers": workers})
            took = time.perf_counter() - t0
            end = ws.counters()
            lines = []
            for f in trace.iterdir():     # read before stopping: shutdown writes are not the run's
                lines += f.read_text().splitlines()
        finally:
            PROCS.stop(workers)
            PROCS.stop(sched)
    finally:
        ws.close()
        shutil.rmtree(root, ignore_errors=True)
    report(m, took, counters_delta(start, opened), counters_delta(opened, end), [json.loads(x) for x in lines if x])


def report(m, took, open_part, run_part, records):
    print(f"{m} tasks, run to the last commit in {took:.1f}s ({m / took:.0f} tasks/s)")
    print("node /stats per task: open " + _fmt(open_part, m) + "; run " + _fmt(run_part, m))
    by = collections.Counter()
    for r in records:
        kind = r["kind"] + ("+body" if r["returnbody"] else "")
        by[(r["role"], kind, r["bucket"], " < ".join(r["by"][:3]))] += 1
    print(f"traced (scheduler and workers, to the last commit): {len(records) / m:.2f} requests per task")
    print(f"{'per task':>9}  {'count':>6}  process    request     bucket    asked by")
    for (role, kind, bucket, chain), n in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"{n / m:9.3f}  {n:6d}  {role:<9}  {kind:<10}  {bucket:<8}  {chain}")


def _fmt(delta, m):
    return ", ".join(f"{k} {delta[k] / m:.2f}" for k in ("get", "put", "2i"))


if __name__ == "__main__":
    main()
