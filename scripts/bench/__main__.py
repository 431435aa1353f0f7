"""The runner: `python scripts/bench [...]` or `python -m scripts.bench [...]`.

Parses the options, runs the chosen workload groups in order (each a
module of this package with GROUP, FIGURES and run(ctx)), writes the JSON
rows and prints the summary. A group that fails leaves n/a reasons on its
rows; the run goes on.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python scripts/bench`: import the package by its name
    _root = str(Path(__file__).resolve().parents[2])
    sys.path[:] = [_root] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from scripts.bench import drain, enqueue, idle, iteration, latency, raw, requests_per_task, startup  # noqa: E402
from scripts.bench import huey_tools, redis_tools  # noqa: E402
from scripts.bench.context import NOT_FOR_PEERS, PB_GROUPS, PEER_GROUPS, Context  # noqa: E402
from scripts.bench.procs import PROCS, log, raise_interrupt  # noqa: E402
from scripts.bench.report import checks, render  # noqa: E402
from scripts.bench.results import REDIS_PEERS, RIAK_PB, Results  # noqa: E402
from scripts.bench.riak_http import RiakHTTP  # noqa: E402
from scripts.bench.sites import RiakTarget  # noqa: E402

MODULES = [enqueue, raw, drain, latency, iteration, requests_per_task, idle, startup]
GROUPS = {m.GROUP: m for m in MODULES}
FIGURES = [f for m in MODULES for f in m.FIGURES]
GROUP_OF = {f.workload: m.GROUP for m in MODULES for f in m.FIGURES}


def parse_args(argv=None):
    def duration(text):
        from riaktq_cli.core.durations import parse_duration
        return parse_duration(text, "duration")

    import scripts.bench
    p = argparse.ArgumentParser(prog="python -m scripts.bench", description=scripts.bench.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small N, short runs (the test suite's mode)")
    p.add_argument("--only", help="comma-separated workload groups: " + ",".join(GROUPS))
    p.add_argument("--out", default="bench-results.json", help="JSON rows (default: bench-results.json)")
    p.add_argument("--riak-url", help="run the Riak workloads against this node (http://host:8098)"
                                      " instead of the test server; cleans up after itself")
    p.add_argument("--riak-pb", metavar="URL", help="with --riak-url: the same node's Protocol Buffers address"
                                                    " (pb://host:8087); the Riak rows then run on both APIs")
    p.add_argument("--bucket-type", default="riaktq", help="with --riak-url: the bucket type (default riaktq)")
    p.add_argument("-n", type=int, help="tasks for enqueue/drain (default 10000, quick 500;"
                                           " the Redis peers' quick drain: 200)")
    p.add_argument("--n-riak", type=int, help="tasks on Riak (default 2000, quick 200)")
    p.add_argument("--workers", type=int, default=4, help="worker processes K (default 4)")
    p.add_argument("--drain-prefetch", type=int, default=128)
    p.add_argument("--drain-interval", type=duration, default=0.05)
    p.add_argument("--drain-poll", type=duration, default=0.02)
    p.add_argument("--drain-repeat", type=int, help="drain runs per system, median kept (default 3, quick 1)")
    p.add_argument("--defaults-seconds", type=float, help="time bound of a drain-defaults run (90, quick 10)")
    p.add_argument("--idle-seconds", type=float, help="idle CPU sampling window (5, quick 2)")
    p.add_argument("--rate", type=float, default=50.0, help="latency: tasks opened per second")
    p.add_argument("--latency-seconds", type=float, help="latency: how long to open tasks (30, quick 3)")
    p.add_argument("--latency-poll", type=duration, default=0.05, help="latency: workers' --poll")
    p.add_argument("--skip-default-interval", action="store_true",
                   help="skip the latency run at the default 1m interval (takes 3 minutes)")
    p.add_argument("--scale-repeat", type=int, default=25, help="timed iterations per store size")
    p.add_argument("--scale-riak-max", type=int, help="largest finished-task store built on Riak (10000, quick 1000)")
    p.add_argument("--startup-runs", type=int)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, stores)")
    p.add_argument("--check", action="store_true", help="exit 1 when a goal check fails")
    args = p.parse_args(argv)
    if args.riak_pb and not args.riak_url:
        p.error("--riak-pb needs --riak-url (the same node's HTTP address: counters and clean-up)")
    args.groups = list(GROUPS) if not args.only else [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        p.error(f"unknown workload group {unknown[0]!r} (known: {', '.join(GROUPS)})")
    return args


def header(args, ctx):
    text = (f"riaktq benchmarks{' (--quick)' if args.quick else ''}: {os.cpu_count()} cores,"
            f" Python {platform.python_version()} ({platform.python_implementation()}),"
            f" SQLite {sqlite3.sqlite_version}, {platform.platform(terse=True)}")
    if not ctx.huey_reason:
        import huey
        text += f", huey {huey.__version__}"
    if any(not ctx.peer_reasons[s] for s in REDIS_PEERS):
        text += f", {redis_tools.versions()}"
    return text + f"; riaktq-riak = {ctx.riak.describe()}"


def main(argv=None):
    args = parse_args(argv)
    if args.riak_url:
        http = RiakHTTP(args.riak_url)
        problem = http.preflight(args.bucket_type)
        http.close()
        if problem:
            print(f"bench: {problem[1]}", file=sys.stderr)
            return problem[0]
    if args.riak_pb:
        from riaktq_cli.riak import connect, RiakError
        try:
            pb = connect([args.riak_pb], retries=0, timeout=5.0)
            pb.ping()
            pb.close()
        except (RiakError, ValueError) as exc:
            print(f"bench: --riak-pb: {exc}", file=sys.stderr)
            return 3
    signal.signal(signal.SIGTERM, raise_interrupt)
    results = Results(FIGURES)
    root = Path(tempfile.mkdtemp(prefix="riaktq-bench-"))
    ctx = Context(args, results, root, RiakTarget(args.riak_url, args.bucket_type, args.riak_pb),
                  huey_tools.huey_missing(), redis_tools.missing())
    for reason in filter(None, (ctx.huey_reason, ctx.riak_reason, *dict.fromkeys(ctx.peer_reasons.values()))):
        log(reason)
    try:
        for group in args.groups:
            log(f"{group} ...")
            started = time.perf_counter()
            GROUPS[group].run(ctx)
            log(f"{group} done in {time.perf_counter() - started:.1f}s")
        for module in MODULES:
            if module.GROUP in args.groups and hasattr(module, "derive"):
                module.derive(ctx)
    finally:
        PROCS.stop_all()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    for figure in FIGURES:
        group = GROUP_OF[figure.workload]
        if group not in args.groups:
            continue
        if group in PB_GROUPS:
            results.na_missing(figure.workload, RIAK_PB, ctx.riak_pb_reason or "not measured")
        else:
            results.na_missing(figure.workload, RIAK_PB,
                               "the Riak store over PB is measured in the raw, drain and requests groups")
        for system in REDIS_PEERS:
            results.na_missing(figure.workload, system,
                               NOT_FOR_PEERS if group not in PEER_GROUPS else "not measured for the Redis peers")
    if not args.only:
        results.fill_missing("not measured")
    rows = results.as_list()
    Path(args.out).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(render(results, args.quick, header(args, ctx)))
    print(f"\nwrote {args.out} ({len(rows)} rows)")
    if args.check and any(c[3] == "FAIL" for c in checks(results, args.quick)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
