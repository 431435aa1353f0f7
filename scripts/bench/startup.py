"""Start-up: `riaktq --help` and `riaktq open` against `python -c pass`.

A command-line queue is started once per task opened from a shell script,
so its start-up is part of its throughput. Every case runs round robin (so
drift on a busy machine hits each alike); the median is kept.
"""

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench import huey_tools
from scripts.bench.procs import riaktq_argv, short_reason
from scripts.bench.results import HUEY, RIAK, SQLITE, SYSTEMS, Figure
from scripts.bench.sites import Workspace

GROUP = "startup"
FIGURES = [
    Figure("startup-help", "ms", "start-up `riaktq --help` (huey_consumer --help)", higher=False),
    Figure("startup-open", "ms", "start-up `riaktq open`, embedded store (huey: enqueue from python -c)", higher=False),
    Figure("startup-open-config", "ms", "start-up `riaktq --config F open` (+ reading TOML)", higher=False),
    Figure("startup-floor", "ms", "start-up floor `python -c pass`", higher=False),
]


def run(ctx):
    runs = ctx.args.startup_runs or (5 if ctx.quick else 20)
    workdir = Path(tempfile.mkdtemp(prefix="startup-", dir=ctx.root))
    # Not named riaktq.toml: `startup-open` runs in workdir with no config at
    # all (the embedded default store, ./riaktq.db); `startup-open-config`
    # names this file, which adds the TOML parser's import.
    cfg = workdir / "with-config.toml"
    cfg.write_text(f'[store]\nbackend = "sqlite"\n[sqlite]\npath = "{workdir / "riaktq.db"}"\n')
    subprocess.run(riaktq_argv() + ["--config", str(cfg), "open", "warm", "--in", "x"], cwd=workdir,
                   capture_output=True)
    counter = iter(range(10**9))
    cases = {
        ("startup-floor", None): lambda: [sys.executable, "-c", "pass"],
        ("startup-help", SQLITE): lambda: riaktq_argv() + ["--help"],
        ("startup-open", SQLITE): lambda: riaktq_argv() + ["open", f"s{next(counter)}", "--in", "x"],
        ("startup-open-config", SQLITE): lambda: riaktq_argv() + ["--config", str(cfg), "open",
                                                                f"c{next(counter)}", "--in", "x"],
    }
    env = None
    if not ctx.huey_reason:
        _dir, hdb, huey, _echo = huey_tools.fresh(ctx.root, "startup-huey")
        huey.storage.close()
        env = huey_tools.huey_env(hdb)
        cases[("startup-help", HUEY)] = lambda: [sys.executable, "-m", "huey.bin.huey_consumer", "--help"]
        cases[("startup-open", HUEY)] = lambda: [sys.executable, "-c",
                                                 f"from {huey_tools.APP} import echo; echo(b'x')"]
    riak_ws = None
    if not ctx.riak_reason:
        try:
            riak_ws = Workspace(ctx, RIAK, "startup-riak")
        except Exception as exc:
            ctx.results.na("startup-open", RIAK, f"riak store failed: {short_reason(exc)}")
    if riak_ws is not None:
        def riak_open():
            task_id = f"r{next(counter)}"
            riak_ws.created([task_id])
            return riak_ws.cli("open", task_id, "--in", "x")
        cases[("startup-open", RIAK)] = riak_open
    try:
        times = _time_round_robin(cases, runs, workdir, env)
    finally:
        if riak_ws is not None:
            riak_ws.close()
    _add(ctx, times, runs)


def _time_round_robin(cases, runs, workdir, huey_env):
    import time
    times = {key: [] for key in cases}
    for _ in range(runs + 1):  # the first round warms caches and is dropped
        for key, argv in cases.items():
            args = argv()
            started = time.perf_counter()
            proc = subprocess.run(args, cwd=workdir, env=huey_env if key[1] == HUEY else None,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            took = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(args)[:80]}: exit {proc.returncode}:"
                                   f" {proc.stderr.decode(errors='replace').strip()[-200:]}")
            times[key].append(took)
    return times


def _add(ctx, times, runs):
    results = ctx.results
    params = {"runs": runs, "statistic": "median"}
    for (workload, system), samples in times.items():
        value = statistics.median(samples[1:]) * 1000
        if system is None:
            for s in SYSTEMS:
                results.add(workload, s, value, params,
                            f"`{Path(sys.executable).name} -c pass`, the same interpreter for every system")
        else:
            results.add(workload, system, value, params)
    results.na("startup-help", RIAK, "the same program as riaktq-sqlite (--help opens no store)")
    results.na("startup-open-config", RIAK, "see startup-open: the Riak case always reads a config")
    results.na("startup-open-config", HUEY, "Huey has no config file")
    if ctx.riak_reason:
        results.na("startup-open", RIAK, ctx.riak_reason)
    if ctx.huey_reason:
        for w in ("startup-help", "startup-open"):
            results.na(w, HUEY, ctx.huey_reason)
