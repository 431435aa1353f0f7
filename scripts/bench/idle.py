"""Idle CPU: what an idle worker and an idle scheduler cost, after work.

A queue spends most of its life idle, on every machine that runs a worker,
so an idle process must cost next to nothing, and keep to that after it has
run tasks (a worker that spins once its queue drains is the classic bug).
The scheduler and K echo workers run with no flags but the scheduler's
--interval 1s (so the tasks run within seconds rather than minutes); CPU is
read from /proc/PID/stat ticks of each process over a few seconds, once
before any task and once after M tasks were run and committed. The figure
is % of one core: the busiest worker instance, and the scheduler.

On Riak an idle queue also costs requests, forever: `idle-requests` is the
node's request count (its /stats) over a few seconds with a scheduler and K
echo workers and nothing to do, per worker. Two variants in the same run:
no flags at all, and the defaults before wake-up hints (hints off, worker
poll 500ms), so the figure says what the hints saved.
"""

import time

from scripts.bench.procs import PROCS, core_percent, group_members, log, wait_until
from scripts.bench.results import HUEY, RIAK, SQLITE, Figure
from scripts.bench.riak_http import counters_delta
from scripts.bench.sites import Workspace, fill, finished_count

GROUP = "idle"
FIGURES = [Figure("idle-cpu", "% core", "idle CPU after running tasks", higher=False,
                  vary="process", variants=("worker", "scheduler"), ratio=False),
           Figure("idle-requests", "requests/s/worker", "idle Riak requests per second per worker", higher=False,
                  vary="flags", variants=("none", "before hints: --hint-listen off, --poll 500ms"), ratio=False)]
INTERVAL = "1s"
# Before wake-up hints (issue 22) the workers polled every 500ms and nothing woke anyone.
BEFORE_HINTS = {"scheduler": ["--hint-listen", "off"], "worker": ["--hint-listen", "off", "--poll", "500ms"]}


def run(ctx):
    for system in ctx.riaktq_systems():
        ctx.riaktq_run(["idle-cpu"], system, lambda s: _idle(ctx, s))
    ctx.results.na("idle-cpu", HUEY, "not measured for Huey")
    ctx.riaktq_run(["idle-requests"], RIAK, lambda s: _idle_requests(ctx, s))
    ctx.results.na("idle-requests", SQLITE, "an embedded file: no requests")
    ctx.results.na("idle-requests", HUEY, "not measured for Huey")


def _idle(ctx, system):
    from riaktq_cli.store.base import INSTANCE
    seconds = ctx.args.idle_seconds or (2.0 if ctx.quick else 5.0)
    m = 2 * ctx.k
    params = {"workers": ctx.k, "handler": "echo", "flags": f"scheduler --interval {INTERVAL}, others default",
              "tasks_run_before": m, "seconds": seconds}
    ws = Workspace(ctx, system, f"idle-{system}")
    try:
        workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(ctx.k))
        sched = ws.start("scheduler", "scheduler", "--interval", INTERVAL)
        alive = {"scheduler": sched, "workers": workers}
        try:
            wait_until(lambda: len(ws.store.list_records(INSTANCE)) >= ctx.k, 60, f"{ctx.k} workers registered",
                       every=0.2, alive=alive)
            before = _sample(sched, workers, seconds)
            fill(ws, m)
            wait_until(lambda: finished_count(ws.store) >= m, 60, f"{m} tasks done", every=0.2, alive=alive)
            time.sleep(1.0)  # the last results are flushed and committed: a settle, not a sync
            after = _sample(sched, workers, seconds)
        finally:
            PROCS.stop(workers)
            PROCS.stop(sched)
    finally:
        ws.close()
    log(f"idle {system}: worker {after['worker']:.2f}%, scheduler {after['scheduler']:.2f}% of a core"
        f" (before work: {before['worker']:.2f}%, {before['scheduler']:.2f}%)")
    for process in ("worker", "scheduler"):
        ctx.results.add("idle-cpu", system, after[process], params, variant=process,
                        note=f"before any task: {before[process]:.2f}%; " + after["detail"])


def _sample(sched, workers, seconds):
    """% of a core over `seconds`: the busiest worker instance, the
    scheduler, and a line with every process."""
    instances = [pid for pid in group_members(workers.pid) if pid != workers.pid]
    if not instances:
        raise RuntimeError("no worker processes found in /proc")
    use = core_percent([sched.pid, workers.pid, *instances], seconds)
    per_worker = [use.get(pid, 0.0) for pid in instances]
    detail = (f"workers {', '.join(f'{u:.2f}' for u in per_worker)}%, supervisor {use.get(workers.pid, 0.0):.2f}%,"
              f" scheduler {use.get(sched.pid, 0.0):.2f}%")
    return {"worker": max(per_worker), "scheduler": use.get(sched.pid, 0.0), "detail": detail}


def _idle_requests(ctx, system):
    """Requests per second per worker of an idle queue, with no flags and
    with the flags that restore the defaults before wake-up hints."""
    from riaktq_cli.store.base import INSTANCE
    seconds = ctx.args.idle_seconds or (2.0 if ctx.quick else 10.0)
    variants = dict(zip(FIGURES[1].variants, ({"scheduler": [], "worker": []}, BEFORE_HINTS)))
    for variant, flags in variants.items():
        ws = Workspace(ctx, system, f"idle-requests-{system}")
        try:
            workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(ctx.k), *flags["worker"])
            sched = ws.start("scheduler", "scheduler", *flags["scheduler"])
            alive = {"scheduler": sched, "workers": workers}
            try:
                wait_until(lambda: len(ws.store.list_records(INSTANCE)) >= ctx.k, 60, f"{ctx.k} workers registered",
                           every=0.2, alive=alive)
                time.sleep(1.0 if ctx.quick else 3.0)   # past the start-up: the lease settles, inboxes read
                before, started = ws.counters(), time.monotonic()
                time.sleep(seconds)
                delta, took = counters_delta(before, ws.counters()), time.monotonic() - started
            finally:
                PROCS.stop(workers)
                PROCS.stop(sched)
        finally:
            ws.close()
        per_worker = sum(delta[k] for k in ("get", "put", "2i")) / took / ctx.k
        log(f"idle requests {system} ({variant}): {per_worker:.2f}/s per worker")
        ctx.results.add("idle-requests", system, per_worker, variant=variant,
                        params={"workers": ctx.k, "seconds": seconds, "handler": "echo",
                                "scheduler_flags": " ".join(flags["scheduler"]) or "none",
                                "worker_flags": " ".join(flags["worker"]) or "none"},
                        note=", ".join(f"{k} {delta[k] / took:.2f}/s" for k in ("get", "put", "2i"))
                        + " (the node's /stats, all processes)")
