"""Drain: N queued tasks, K worker processes, until every one is done.

Two settings, both in this group so that `--only drain` shows them side by
side: `drain` with the flags that make riaktq fast (--prefetch, --interval,
--poll), and `drain-defaults` with no flags beyond the worker count, on
every side (`riaktq scheduler` + `riaktq worker --count K`; Huey's
`-w K -k process`; `celery worker --concurrency K --pool prefork`; K `rq
worker`s), which is what a new user gets. A drain-defaults run is bounded
in time (--defaults-seconds) so that slow defaults still end it; its rate
is then the tasks done within the bound. Huey, Celery and RQ take no flags
that would tune a drain, so their drain runs fill both rows; Celery and RQ
are bounded like drain-defaults (RQ forks a process per job: slow).

On Riak the drain is also given as a ratio to the raw 16-connection PUT
rate of the same run (`drain-vs-raw-put`, see raw.py): the share of the
node's write capacity a task queue turns into finished tasks.

On Riak the run's end is seen in the scheduler's --events file, not by
counting tasks through the index: four 2i queries over every task, four
times a second, cost the node (the test server: one Python process on the
same two cores) a share of the very capacity being measured. `drain`
counts from process start, so it includes the scheduler's start-up (on
Riak the lease's settle time, 2 s: a third of a 2,000-task run);
`drain-steady` counts from the first assign, and the ratio to the raw PUT
rate (itself a steady rate) uses it.
"""

import contextlib
import json
import signal
import time

from scripts.bench import huey_tools, redis_tools
from scripts.bench.procs import PROCS, check_alive, cpu_children, fmt_ms, group_cpu, log
from scripts.bench.results import HUEY, REDIS_PEERS, RIAK, RIAK_PB, RIAK_SYSTEMS, SQLITE, Figure
from scripts.bench.sites import Workspace, fill, finished_count

GROUP = "drain"
FIGURES = [
    Figure("drain", "tasks/s", "drain"),
    Figure("drain-wall", "s", "drain wall time", higher=False),
    Figure("drain-cpu", "ms/task", "drain CPU, all processes", higher=False),
    Figure("drain-steady", "tasks/s", "drain from the first assign (Riak: lease settle excluded)"),
    Figure("drain-defaults", "tasks/s", "drain, no flags/config beyond the worker count"),
    Figure("drain-vs-raw-put", "×", "drain / raw PUT rate at 16 connections (Riak)", ratio=False),
    Figure("drain-pbs", "tasks/s", "drain over pbs:// (StartTls + auth; test server)", ratio=False),
]
TUNED = ["drain", "drain-wall", "drain-cpu", "drain-steady"]


def run(ctx):
    for system in ctx.riaktq_systems() + [RIAK_PB]:
        ctx.riaktq_run(TUNED, system, lambda s: _repeat(ctx, s, _riaktq_once))
    if ctx.riak.is_node:
        ctx.results.na("drain-pbs", RIAK_PB, "measured on the test server (--secure); for a real node "
                       "see docs/riak.md")
    else:
        ctx.riaktq_run(["drain-pbs"], RIAK_PB, lambda s: _secure_once(ctx))
    for system in (SQLITE, RIAK, HUEY):
        ctx.results.na("drain-pbs", system, "the Riak store over PB with security on")
    ctx.riaktq_run(["drain-defaults"], SQLITE, lambda s: _riaktq_defaults(ctx, s))
    for system in RIAK_SYSTEMS:
        ctx.results.na("drain-defaults", system, "measured on riaktq-sqlite and the peers only")
    ctx.huey_run(TUNED + ["drain-defaults"], lambda: _repeat(ctx, HUEY, _huey_once))
    ctx.peer_run(TUNED + ["drain-defaults"], lambda s: _repeat(ctx, s, _peer_once))


def derive(ctx):
    """drain-vs-raw-put from this run's drain and raw-put rows."""
    results = ctx.results
    for system in RIAK_SYSTEMS:
        # Steady rates on both sides: the raw rate has no start-up either.
        drain, raw = results.value("drain-steady", system), results.value("raw-put", system, variant=16)
        if drain is not None and raw:
            results.add("drain-vs-raw-put", system, drain / raw,
                        {"drain_tasks_per_s": round(drain, 1), "raw_put_16_per_s": round(raw, 1)},
                        f"drain {drain:,.0f} tasks/s from the first assign ÷ raw PUT {raw:,.0f}/s, same run, "
                        f"same target (from process start: {results.value('drain', system):,.0f} tasks/s)")
        else:
            results.na_missing("drain-vs-raw-put", system, "needs both the drain and the raw groups in the same run")
    for system in (SQLITE, HUEY):
        results.na_missing("drain-vs-raw-put", system, "a Riak figure")


def _repeat(ctx, system, once):
    """Run the drain --drain-repeat times (each on a fresh store) and keep
    the median run by rate: drains of SQLite queues are noisy."""
    repeat = ctx.args.drain_repeat or (1 if ctx.quick else 3)
    if system in RIAK_SYSTEMS and not ctx.args.drain_repeat:
        repeat = 1  # tens of seconds a run, bounded by the node anyway
    runs = []
    for _ in range(repeat):
        runs.append(once(ctx, system))
        log(f"drain {system}: {runs[-1]['rate']:.0f} tasks/s, {runs[-1]['cpu_ms']:.3f} ms CPU/task")
    runs.sort(key=lambda r: r["rate"])
    mid = runs[len(runs) // 2]
    rates = ", ".join(f"{r['rate']:.0f}" for r in runs)
    spread = f"median of {len(runs)} runs (rates {rates}/s)" if len(runs) > 1 else "1 run"
    add = ctx.results.add
    add("drain", system, mid["rate"], mid["params"], spread + mid["note"])
    add("drain-wall", system, mid["took"], mid["params"], "from process start to all done; " + spread)
    add("drain-cpu", system, mid["cpu_ms"], mid["params"], "CPU " + mid["cpu_note"])
    if mid.get("steady"):
        add("drain-steady", system, mid["steady"], mid["params"],
            "from the first assign to all done (the scheduler's start-up, on Riak the lease's 2 s settle, "
            "left out); " + spread)
    else:
        ctx.results.na_missing("drain-steady", system, "measured where the events file shows the first assign (Riak)")
    if system == HUEY or system in REDIS_PEERS:  # no flags beyond the worker count: the same runs
        add("drain-defaults", system, mid["rate"], mid["params"],
            f"the drain runs ({mid.get('flags_note', 'no flags')}); " + spread)


def _riaktq_once(ctx, system):
    a = ctx.args
    flags = ["--prefetch", str(a.drain_prefetch), "--interval", fmt_ms(a.drain_interval)]
    params = {"tasks": ctx.n_for(system), "workers": ctx.k, "handler": "echo", "prefetch": a.drain_prefetch,
              "interval": fmt_ms(a.drain_interval), "poll": fmt_ms(a.drain_poll)}
    return _riaktq_drain(ctx, system, flags, ["--poll", fmt_ms(a.drain_poll)], params)


def _secure_once(ctx):
    """The tuned drain over pbs:// against the test server with security on: every process
    authenticates once per connection, then works as on plain PB."""
    a = ctx.args
    flags = ["--prefetch", str(a.drain_prefetch), "--interval", fmt_ms(a.drain_interval)]
    params = {"tasks": ctx.n_for(RIAK_PB), "workers": ctx.k, "handler": "echo", "prefetch": a.drain_prefetch,
              "interval": fmt_ms(a.drain_interval), "poll": fmt_ms(a.drain_poll), "security": "TLS 1.2 + user"}
    run = _riaktq_drain(ctx, RIAK_PB, flags, ["--poll", fmt_ms(a.drain_poll)], params, secure=True)
    log(f"drain over pbs://: {run['rate']:.0f} tasks/s")
    plain = ctx.results.value("drain", RIAK_PB)
    note = f"; {run['rate'] / plain:.2f}× the plain PB drain of this run" if plain else ""
    ctx.results.add("drain-pbs", RIAK_PB, run["rate"], params, "1 run" + note + run["note"])


def _riaktq_defaults(ctx, system):
    bound = ctx.args.defaults_seconds or (10.0 if ctx.quick else 90.0)
    params = {"tasks": ctx.n_for(system), "workers": ctx.k, "handler": "echo", "flags": "none",
              "bound_s": bound}
    run = _riaktq_drain(ctx, system, [], [], params, bound=bound)
    log(f"drain-defaults {system}: {run['rate']:.1f} tasks/s ({run['done']}/{run['n']} in {run['took']:.1f}s)")
    ctx.results.add("drain-defaults", system, run["rate"], params,
                    f"{run['done']}/{run['n']} done in {run['took']:.1f}s"
                    + (" (stopped at the time bound)" if run["done"] < run["n"] else "") + run["note"])


def _riaktq_drain(ctx, system, sched_flags, worker_flags, params, bound=None, secure=False):
    """One drain: fill, start scheduler and workers, wait for all done (or
    `bound` seconds), stop them. CPU per process group from /proc."""
    n = params["tasks"]
    ws = Workspace(ctx, system, f"drain-{system}", secure=secure)
    events = None
    try:
        fill(ws, n)
        events = _Events(ws.dir / "events.jsonl") if system in RIAK_SYSTEMS else None
        cpu0 = cpu_children()
        started = time.perf_counter()
        sched = ws.start("scheduler", "scheduler", *sched_flags, *(events.flags if events else ()))
        workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(ctx.k), *worker_flags)
        check_every = 0.05 if system == SQLITE else 0.02
        deadline = started + (bound if bound is not None else max(120.0, n / 20))
        try:
            while True:
                done = events.closed() if events else finished_count(ws.store)
                if done >= n or (bound is not None and time.perf_counter() >= deadline):
                    break
                check_alive(scheduler=sched, workers=workers)
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"drain timed out: {done}/{n} done after {deadline - started:.0f}s")
                time.sleep(check_every)
            took = time.perf_counter() - started
            parts = {"scheduler": group_cpu(sched.pid), "workers": group_cpu(workers.pid, leader=False),
                     "supervisor": group_cpu(workers.pid, members=False)}
            if ws.server is not None:
                parts["riak test server (not in the total)"] = group_cpu(ws.server.proc.pid)
        finally:
            PROCS.stop(workers)
            PROCS.stop(sched)
        cpu_all = cpu_children() - cpu0
    finally:
        if events:
            events.close()
        ws.close()
    run = _cpu_figures(max(done, 1), took, parts, cpu_all, exclude="riak test server (not in the total)")
    run.update(params=params, done=done, n=n, rate=done / took)
    if events and events.first is not None and started + took > events.first:
        run["steady"] = done / (started + took - events.first)
        run["note"] += f"; {run['steady']:,.0f} tasks/s from the first assign ({events.first - started:.1f}s after start)"
    return run


class _Events:
    """The scheduler's --events file, read as it grows: closes so far, and
    when the first assign was seen."""

    def __init__(self, path):
        path.touch()
        self.flags = ("--events", str(path))
        self._file = open(path)
        self._buf = ""
        self._closed = set()
        self.first = None

    def closed(self):
        chunk = self._file.read()
        if chunk:
            *lines, self._buf = (self._buf + chunk).split("\n")
            for event in map(json.loads, filter(None, lines)):
                if self.first is None and event["transition"] == "assign":
                    self.first = time.perf_counter()
                if event["transition"] == "close":
                    self._closed.add(event["id"])   # at least once: a repeat counts once
        return len(self._closed)

    def close(self):
        self._file.close()


def _cpu_figures(n, took, parts, cpu_all, exclude=None):
    if all(v is not None for v in parts.values()):
        cpu = sum(v for k, v in parts.items() if k != exclude)
        cpu_note = ("when all were done (/proc, start-up included, shutdown not): "
                    + ", ".join(f"{k} {v / n * 1000:.3f} ms/task" for k, v in parts.items()))
    else:
        cpu = cpu_all
        cpu_note = "user+sys of all processes, start-up and shutdown included"
    return {"rate": n / took, "took": took, "cpu_ms": cpu / n * 1000, "cpu_note": cpu_note, "note": ""}


def _huey_once(ctx, _system):
    n = ctx.n
    workdir, db, huey, echo = huey_tools.fresh(ctx.root, "drain-huey")
    huey_tools.raw_batch(huey, echo, n)
    params = {"tasks": n, "workers": ctx.k, "flags": f"-w {ctx.k} -k process", "task": "echo, result stored"}
    cpu0 = cpu_children()
    started = time.perf_counter()
    consumer = huey_tools.consumer(workdir, db, ctx.k)
    deadline = started + max(120.0, n / 20)
    last, last_at, lost = -1, started, 0
    try:
        while True:
            done = huey.storage.result_store_size()
            now = time.perf_counter()
            if done >= n:
                break
            if done != last:
                last, last_at = done, now
            elif now - last_at > 10.0 and huey.pending_count() == 0:
                # Huey drops a task whose worker hits "database is locked"
                # (busy timeout 5 s): count it lost instead of waiting forever.
                lost = n - done
                break
            check_alive(huey_consumer=consumer)
            if now > deadline:
                raise RuntimeError(f"drain timed out: {done}/{n} done")
            time.sleep(0.05)
        took = (last_at if lost else time.perf_counter()) - started
        parts = {"consumer": group_cpu(consumer.pid, members=False),
                 "workers": group_cpu(consumer.pid, leader=False)}
    finally:
        PROCS.stop(consumer, sig=signal.SIGINT)
        huey.storage.close()
    cpu_all = cpu_children() - cpu0
    run = _cpu_figures(n - lost, took, parts, cpu_all)
    with contextlib.suppress(OSError):
        locked = (workdir / "consumer.log").read_text(errors="replace").count("database is locked")
        if locked:
            run["note"] += f"; {locked} 'database is locked' error(s) in its log"
    if lost:
        run["note"] += f"; {lost} task(s) lost (never done), rate over the {n - lost} done"
    run["params"] = params
    run["flags_note"] = "Huey's flags are -w/-k only"
    return run


def _peer_once(ctx, system):
    """Celery or RQ on a Redis of its own: N tasks enqueued, then K workers
    with their defaults until all are done, bounded like drain-defaults."""
    n = ctx.n_peers
    bound = ctx.args.defaults_seconds or (10.0 if ctx.quick else 90.0)
    peer = redis_tools.PEERS[system](ctx.root, f"drain-{system}", ctx.k)
    try:
        peer.enqueue_many(n)
        params = {"tasks": n, "workers": ctx.k, "flags": peer.flags.format(k=ctx.k), "task": "echo, result stored",
                  "bound_s": bound}
        cpu0 = cpu_children()
        started = time.perf_counter()
        peer.start_workers()
        deadline = started + bound
        while peer.done.count < n and time.perf_counter() < deadline:
            peer.done.poll(timeout=0.02)
            check_alive(**peer.alive())
        took = time.perf_counter() - started
        done = min(peer.done.count, n)
        parts = peer.cpu_parts()
        parts["redis-server (not in the total)"] = peer.server.cpu()
        peer.stop_workers()
        cpu_all = cpu_children() - cpu0
    finally:
        peer.close()
    run = _cpu_figures(max(done, 1), took, parts, cpu_all, exclude="redis-server (not in the total)")
    run.update(params=params, rate=done / took, flags_note=f"no flags beyond the worker count: {params['flags']}")
    run["note"] += f"; {done}/{n} done in {took:.1f}s" + (" (stopped at the time bound)" if done < n else "")
    if peer.done.first is not None and started + took > peer.done.first:
        run["note"] += (f"; {done / (started + took - peer.done.first):,.0f} tasks/s from the first result"
                        f" ({peer.done.first - started:.1f}s after start); done = {peer.seen}")
    return run
