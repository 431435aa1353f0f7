"""Latency: tasks opened at a steady rate while the workers sit idle and
wait; open -> done (committed) p50/p95/p99.

riaktq at `--interval 100ms` and with no flags at all (the defaults: interval
1s, prefetch auto, worker poll 500ms; skipped with --quick). "Done" is the scheduler's close transition seen in
its --events file, so the measurement adds no reads to the store. Huey has
no interval: its one run stands beside both sets of rows, without a ratio.

Tasks are opened only once the scheduler iterates with every worker
(sites.wait_ready). A fixed pause used to stand there: on Riak a new
scheduler waits out the lease's settle time (2 s) before its first
iteration, so the first ~15 tasks of a run waited for the start-up, about
1.2 s each, and that alone was the p99 (993 ms) of 1,500 tasks.
"""

import json
import signal
import sqlite3
import statistics
import time

from scripts.bench import huey_tools, redis_tools
from scripts.bench.procs import PROCS, check_alive, fmt_ms
from scripts.bench.results import HUEY, RIAK_PB, Figure
from scripts.bench.sites import Workspace, wait_ready

GROUP = "latency"
FAST = ["latency-p50", "latency-p95", "latency-p99"]
SLOW = ["latency-default-p50", "latency-default-p95", "latency-default-p99"]
FIGURES = [Figure(w, "ms", f"latency {w[-3:]} (interval 100ms)", higher=False) for w in FAST] + \
          [Figure(w, "ms", f"latency {w[-3:]} (no flags: the defaults)", higher=False, ratio=False) for w in SLOW]


def run(ctx):
    rate = ctx.args.rate
    window = ctx.args.latency_seconds or (3.0 if ctx.quick else 30.0)
    for system in ctx.riaktq_systems():
        ctx.riaktq_run(FAST, system, lambda s: _riaktq(ctx, s, FAST, 0.1, window, rate))
    if ctx.quick or ctx.args.skip_default_interval:
        why = "--quick" if ctx.quick else "--skip-default-interval"
        for system in ctx.riaktq_systems() + [RIAK_PB]:  # the others' one run fills both sets of rows
            ctx.results.na(SLOW[0], system, f"skipped with {why}: a 30 s run with the defaults")
            for w in SLOW[1:]:
                ctx.results.na(w, system, f"skipped with {why}")
    else:
        for system in ctx.riaktq_systems():
            ctx.riaktq_run(SLOW, system, lambda s: _riaktq(ctx, s, SLOW, None, 30.0, rate))
    ctx.huey_run(FAST + SLOW, lambda: _huey(ctx, window, rate))
    ctx.peer_run(FAST + SLOW, lambda s: _peer(ctx, s, window, rate))


def _riaktq(ctx, system, names, interval, window, rate):
    from riaktq_cli.api.queue import Queue
    from riaktq_cli.config.loading import load
    # interval None: no flags at all, the defaults (interval 1s, prefetch auto)
    defaults = interval is None
    prefetch = 8
    poll = ctx.args.latency_poll
    params = {"rate_per_s": rate, "seconds": window, "workers": ctx.k, "handler": "echo"}
    if defaults:
        params["flags"] = "none"
        interval = 1.0
    else:
        params.update(interval=fmt_ms(interval), prefetch=prefetch, poll=fmt_ms(poll))
    ws = Workspace(ctx, system, f"latency-{system}")
    events = ws.dir / "events.jsonl"
    events.touch()
    try:
        flags = [] if defaults else ["--interval", fmt_ms(interval), "--prefetch", str(prefetch)]
        sched = ws.start("scheduler", "scheduler", *flags, "--events", str(events))
        flags = [] if defaults else ["--poll", fmt_ms(poll)]
        workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(ctx.k), *flags)
        queue = Queue(ws.store, load(str(ws.config)))
        try:
            wait_ready(ws, ctx.k, alive={"scheduler": sched, "workers": workers})
            opened, latencies = {}, []
            total = int(rate * window)
            t0 = time.perf_counter()
            deadline = t0 + window + 3 * interval + 30.0
            with open(events) as ev:
                buf, i = "", 0
                while len(latencies) < total:
                    now = time.perf_counter()
                    while i < total and now >= t0 + i / rate:
                        task = queue.open(f"l{i:06d}", b"x")   # as an application would: it hints the scheduler
                        ws.created([task.id])
                        opened[task.id] = task.cat
                        i += 1
                        now = time.perf_counter()
                    chunk = ev.read()
                    if chunk:
                        seen = time.time()
                        *lines, buf = (buf + chunk).split("\n")
                        for line in filter(None, lines):
                            rec = json.loads(line)
                            if rec.get("transition") == "close" and rec["id"] in opened:
                                latencies.append(seen - opened.pop(rec["id"]) / 1e6)
                    if now > deadline:
                        raise RuntimeError(f"latency run timed out: {len(latencies)}/{total} done")
                    check_alive(scheduler=sched, workers=workers)
                    time.sleep(_pause(i, total, t0, rate))
        finally:
            PROCS.stop(workers)
            PROCS.stop(sched)
    finally:
        ws.close()
    _add_percentiles(ctx, names, system, latencies, params, "open (cat) -> close committed, seen in --events")


def _pause(i, total, t0, rate):
    """Sleep until the next arrival is due, 5 ms at most."""
    return 0.005 if i >= total else min(0.005, max(0.0, t0 + i / rate - time.perf_counter()))


def _add_percentiles(ctx, names, system, latencies, params, note):
    if len(latencies) < 2:
        raise RuntimeError(f"only {len(latencies)} latency sample(s)")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    for name, value in zip(names, (q[49], q[94], q[98])):
        ctx.results.add(name, system, value * 1000, params, note + f"; {len(latencies)} tasks")


def _huey(ctx, window, rate):
    workdir, db, huey, echo = huey_tools.fresh(ctx.root, "latency-huey")
    params = {"rate_per_s": rate, "seconds": window, "workers": ctx.k, "flags": f"-w {ctx.k} -k process"}
    consumer = huey_tools.consumer(workdir, db, ctx.k)
    watch = sqlite3.connect(str(db), timeout=30)
    try:
        time.sleep(1.0)
        opened, latencies = {}, []
        total = int(rate * window)
        t0 = time.perf_counter()
        deadline = t0 + window + 60.0
        last_rowid, i = 0, 0
        while len(latencies) < total:
            now = time.perf_counter()
            while i < total and now >= t0 + i / rate:
                opened[echo(b"x").id] = time.time()
                i += 1
                now = time.perf_counter()
            rows = watch.execute("select rowid, key from kv where rowid > ? order by rowid", (last_rowid,)).fetchall()
            if rows:
                seen = time.time()
                last_rowid = rows[-1][0]
                for _rowid, key in rows:
                    key = key.decode() if isinstance(key, bytes) else key
                    if key in opened:
                        latencies.append(seen - opened.pop(key))
            if now > deadline:
                raise RuntimeError(f"latency run timed out: {len(latencies)}/{total} done")
            check_alive(huey_consumer=consumer)
            time.sleep(_pause(i, total, t0, rate))
    finally:
        watch.close()
        PROCS.stop(consumer, sig=signal.SIGINT)
        huey.storage.close()
    _add_percentiles(ctx, FAST, HUEY, latencies, params, "enqueue -> result stored, seen by polling its kv table")
    _same_run_for_defaults(ctx, HUEY, "Huey")


def _same_run_for_defaults(ctx, system, name):
    """A queue with no interval: its one run stands beside both sets of rows."""
    for fast, slow in zip(FAST, SLOW):
        row = ctx.results.rows[(fast, None, system)]
        ctx.results.add(slow, system, row["value"], row["params"],
                        row["note"] + f" (the same run; {name} has no interval)")


def _peer(ctx, system, window, rate):
    """Celery or RQ with its defaults on a Redis of its own: the bench
    enqueues at `rate` once k warm-up tasks are done, and sees each result
    in a subscription (redis_tools: no key is read)."""
    peer = redis_tools.PEERS[system](ctx.root, f"latency-{system}", ctx.k)
    params = {"rate_per_s": rate, "seconds": window, "workers": ctx.k, "flags": peer.flags.format(k=ctx.k)}
    try:
        peer.start_workers()
        peer.wait_ready()
        opened, latencies = {}, []
        total = int(rate * window)
        t0 = time.perf_counter()
        deadline = t0 + window + 60.0
        i = 0
        while len(latencies) < total:
            now = time.perf_counter()
            while i < total and now >= t0 + i / rate:
                at = time.time()
                opened[peer.enqueue()] = at
                i += 1
                now = time.perf_counter()
            # Wait in the subscription itself: a result is seen as it arrives, not at the next 5 ms tick.
            for task_id, seen in peer.done.poll(timeout=_pause(i, total, t0, rate)):
                if task_id in opened:
                    latencies.append(seen - opened.pop(task_id))
            if now > deadline:
                raise RuntimeError(f"latency run timed out: {len(latencies)}/{total} done")
            check_alive(**peer.alive())
    finally:
        peer.close()
    _add_percentiles(ctx, FAST, system, latencies, params, f"enqueue -> result stored, seen as: {peer.seen}")
    _same_run_for_defaults(ctx, system, peer.name)
