"""Requests per task on Riak, by kind, counted by the node itself.

M tasks opened (batches of 500), then a scheduler and K echo workers at
prefetch 8 until every task is committed; the node's /stats totals
(node_gets_total, node_puts_total, index_fsm_create) before the opening and
at the last commit, divided by M. Everything the queue does in that time
counts: opening, assigning, running, committing, heartbeats and idle
polling. Completion is read from the scheduler's --events file, never from
the store, so the benchmark adds no requests of its own. On a shared node
other clients' requests would count too: run it on a quiet node.

1,000 tasks, as in the measurement on a real node that set the goal: with
200, the workers' idle polls while the scheduler starts (its Riak lease
settles for 2 s first) were 0.6 GET per task by themselves.
"""

import time

from scripts.bench.procs import PROCS, fmt_ms, wait_until
from scripts.bench.results import HUEY, RIAK_SYSTEMS, SQLITE, Figure
from scripts.bench.riak_http import counters_delta
from scripts.bench.sites import Workspace, fill

GROUP = "requests"
KINDS = ("get", "put", "2i", "total")
PREFETCH = 8
FIGURES = [Figure("requests-per-task", "requests", f"Riak requests per task (prefetch {PREFETCH})", higher=False,
                  vary="kind", variants=KINDS)]


def run(ctx):
    for system in RIAK_SYSTEMS:
        ctx.riaktq_run(["requests-per-task"], system, lambda s: _requests(ctx, s))
    ctx.results.na("requests-per-task", SQLITE, "the SQLite store makes no requests")
    ctx.results.na("requests-per-task", HUEY, "Huey's SQLite storage makes no requests")


def _requests(ctx, system):
    m = 40 if ctx.quick else 1000   # the real-node figure was 1,000 tasks
    interval, poll = 0.1, 0.1
    params = {"tasks": m, "prefetch": PREFETCH, "workers": ctx.k, "handler": "echo",
              "interval": fmt_ms(interval), "poll": fmt_ms(poll), "counted_by": "node /stats"}
    ws = Workspace(ctx, system, "requests")
    events = ws.dir / "events.jsonl"
    events.touch()
    try:
        start = ws.counters()
        missing = [k for k, v in start.items() if v is None and k != "list"]
        if missing:
            raise RuntimeError(f"the node's /stats lacks the counters for {', '.join(missing)}")
        fill(ws, m)
        opened = ws.counters()
        sched = ws.start("scheduler", "scheduler", "--interval", fmt_ms(interval),
                         "--prefetch", str(PREFETCH), "--events", str(events))
        workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(ctx.k), "--poll", fmt_ms(poll))
        try:
            def all_closed():
                return sum(1 for line in events.read_text().splitlines() if '"close"' in line) >= m
            started = time.perf_counter()
            wait_until(all_closed, 60 + m, f"{m} tasks committed", alive={"scheduler": sched, "workers": workers})
            took = time.perf_counter() - started
            end = ws.counters()
        finally:
            PROCS.stop(workers)
            PROCS.stop(sched)
    finally:
        ws.close()
    total = counters_delta(start, end)
    open_part = counters_delta(start, opened)
    if total.get("list"):
        raise RuntimeError(f"{total['list']} key listing(s) reached the node during the run")
    values = {k: total[k] / m for k in ("get", "put", "2i")}
    values["total"] = sum(values.values())
    opening = sum(open_part[k] for k in ("get", "put", "2i")) / m
    for kind in KINDS:
        ctx.results.add("requests-per-task", system, values[kind], params, variant=kind,
                        note=f"open {opening:.2f}/task of the total; run to commit in {took:.1f}s,"
                             " idle polling included")
