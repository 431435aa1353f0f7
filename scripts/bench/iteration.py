"""Iteration cost: what one scheduler iteration costs as the store grows.

- `iteration-1k` .. `iteration-1m`: one iteration with 1k..1M finished tasks
  and 100 todo in the store (must stay flat: nothing may scan finished
  tasks); a fresh Scheduler each time, state reset between iterations.
- `iteration-instances`: a steady iteration (the same Scheduler, after a
  first one assigned the todo tasks) with 10, 100 and 1,000 instance
  records: the scheduler reads every instance record every iteration, so
  this grows, and must grow no faster than linearly.
- `scheduler-cpu`: the scheduler's CPU per task, in this process, with the
  workers' side faked (take every inbox entry, put a result in the outbox),
  free of process noise; logged as `riaktq scheduler` logs, and not.
"""

import logging
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from scripts.bench.procs import log
from scripts.bench.results import HUEY, RIAK, SQLITE, Figure
from scripts.bench.sites import Workspace, fill

GROUP = "iteration"
SCALE_SIZES = [("iteration-1k", 1_000), ("iteration-10k", 10_000),
               ("iteration-100k", 100_000), ("iteration-1m", 1_000_000)]
INSTANCE_COUNTS = (10, 100, 1000)
FIGURES = [Figure(name, "ms", f"scheduler iteration, {name[10:]} finished", higher=False) for name, _ in SCALE_SIZES] + [
    Figure("iteration-instances", "ms", "scheduler iteration, instance records", higher=False,
           vary="instances", variants=INSTANCE_COUNTS),
    Figure("scheduler-cpu", "µs/task", "scheduler CPU per task, in-process (commit+assign)", higher=False),
]
FAKE_INSTANCES = 4
SCALE_TODO = 100
NO_HUEY = "Huey has no scheduler iteration: consumers dequeue directly"


def run(ctx):
    _scale(ctx)
    for system in ctx.riaktq_systems():
        ctx.riaktq_run(["iteration-instances"], system, lambda s: _instances(ctx, s))
        ctx.riaktq_run(["scheduler-cpu"], system, lambda s: _schedcost(ctx, s))
    for figure in FIGURES:
        ctx.results.na(figure.workload, HUEY, NO_HUEY)


# --- fakes and timing ------------------------------------------------------------
def _fake_instances(store, count, outboxes=None, taken=None):
    from riaktq_cli.core import protocol
    from riaktq_cli.core.clock import now_us
    from riaktq_cli.store.base import INSTANCE
    names = [f"fake-{i}" for i in range(1, count + 1)]
    for name in names:
        store.put_record(INSTANCE, name, {
            "name": name, "handler": "echo", "tags": [], "host": "bench", "pid": 0,
            "started": 0, "heartbeat": now_us(), "status": protocol.IDLE,
            "taken": (taken or {}).get(name, 0), "queue": [], "current": None,
            "outbox": (outboxes or {}).get(name, [])})
    return names


def _reset(store):
    """Roll back every assigned task and drop the inboxes it was put in."""
    from riaktq_cli.core import task as transitions
    from riaktq_cli.store.base import INBOX
    pairs = store.nextup_assignees()
    store.update_tasks([tid for tid, _ in pairs],
                       lambda t: transitions.rollback(t)[0] if t.status == transitions.NEXTUP else None)
    for name in {assignee for _, assignee in pairs}:
        store.delete_record(INBOX, name)


def _scheduler(store, prefetch=8):
    from riaktq_cli.scheduler.events import EventSink
    from riaktq_cli.scheduler.iteration import Scheduler
    return Scheduler(store, instance_timeout=30, prefetch=prefetch, events=EventSink(None))


def _time_cold(store, repeat):
    """Median seconds of a fresh Scheduler's iteration, state reset before each."""
    times, assigned = [], []
    warmup = 3  # caches, statement cache after ANALYZE
    for run in range(repeat + warmup):
        _reset(store)
        _fake_instances(store, FAKE_INSTANCES)
        scheduler = _scheduler(store)
        started = time.perf_counter()
        summary = scheduler.iteration()
        if run >= warmup:
            times.append(time.perf_counter() - started)
            assigned.append(summary["assign"])
    return statistics.median(times), statistics.median(assigned)


# --- finished tasks --------------------------------------------------------------
def _scale(ctx):
    sizes = SCALE_SIZES[:2] if ctx.quick else SCALE_SIZES
    for name, _ in SCALE_SIZES[len(sizes):]:
        ctx.results.na(name, SQLITE, "skipped with --quick (1k and 10k only)")
    ctx.riaktq_run([n for n, _ in sizes], SQLITE, lambda s: _scale_sqlite(ctx, sizes))
    riak_max = ctx.args.scale_riak_max or (1_000 if ctx.quick else 10_000)
    riak_sizes = [(n, s) for n, s in sizes if s <= riak_max]
    for name, size in SCALE_SIZES:
        if (name, size) not in riak_sizes:
            ctx.results.na(name, RIAK, f"building {size:,} tasks over HTTP takes too long"
                                       f" (--scale-riak-max {riak_max:,}{', --quick' if ctx.quick else ''})")
    if riak_sizes:
        ctx.riaktq_run([n for n, _ in riak_sizes], RIAK, lambda s: _scale_riak(ctx, riak_sizes))


def _scale_params(size, repeat, assigned):
    return {"finished_tasks": size, "todo_tasks": SCALE_TODO, "instances": FAKE_INSTANCES, "prefetch": 8,
            "iterations": repeat, "assigned_per_iteration": assigned}


def _scale_sqlite(ctx, sizes):
    from riaktq_cli.core.clock import now_us
    from riaktq_cli.store.sqlite import SqliteStore
    workdir = Path(tempfile.mkdtemp(prefix="scale-sqlite-", dir=ctx.root))
    path = workdir / "riaktq.db"
    store = SqliteStore(path)
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    db.execute("PRAGMA synchronous = OFF")
    base = now_us() - 10**12
    # the columns every row needs; the rest (run, lost, ...) take their defaults
    insert = ("INSERT INTO tasks (id, status, priority, retry, assignee, in_, out, sat, laf, cat, tags, rev)"
              " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")

    def finished_rows(start, stop):
        for i in range(start, stop):
            cat = base + i * 1000
            yield (f"done-{i:08d}", "done", 0, 0, f"fake-{i % 4 + 1}", b"x", b"x", cat + 10, 50, cat, "[]", 3)

    now = now_us()
    db.execute("BEGIN")
    db.executemany(insert, [(f"todo-{i:04d}", "todo", 0, 0, None, b"x", None, None, None, now + i, "[]", 1)
                            for i in range(SCALE_TODO)])
    db.execute("COMMIT")
    have, repeat = 0, ctx.args.scale_repeat
    try:
        for name, size in sizes:
            started = time.perf_counter()
            for start in range(have, size, 100_000):
                db.execute("BEGIN")
                db.executemany(insert, finished_rows(start, min(size, start + 100_000)))
                db.execute("COMMIT")
            have = size
            db.execute("ANALYZE")
            built = time.perf_counter() - started
            median, assigned = _time_cold(store, repeat)
            log(f"scale sqlite {size:,}: built in {built:.1f}s, iteration {median * 1000:.2f}ms")
            ctx.results.add(name, SQLITE, median * 1000, _scale_params(size, repeat, assigned),
                            "median; a fresh Scheduler each iteration, state reset between iterations")
    finally:
        db.close()
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _scale_riak(ctx, sizes):
    from riaktq_cli.core import task as transitions
    from riaktq_cli.core.clock import now_us
    ws = Workspace(ctx, RIAK, "scale-riak")
    try:
        fill(ws, SCALE_TODO, prefix="todo-")
        have, repeat = 0, max(3, ctx.args.scale_repeat // 2)
        for name, size in sizes:
            base = now_us() - 10**12
            for start in range(have, size, 500):
                batch = [transitions.Task(id=f"done-{i:08d}", status="done", assignee="fake-1", in_=b"x",
                                          out=b"x", sat=base + i + 10, laf=50, cat=base + i, rev=3)
                         for i in range(start, min(size, start + 500))]
                ws.created(t.id for t in batch)
                errors = ws.store.create_tasks(batch)
                if any(errors):
                    raise RuntimeError(f"create_tasks refused: {next(e for e in errors if e)}")
            have = size
            median, assigned = _time_cold(ws.store, repeat)
            log(f"scale riak {size:,}: iteration {median * 1000:.2f}ms")
            ctx.results.add(name, RIAK, median * 1000, _scale_params(size, repeat, assigned),
                            "median; a fresh Scheduler each iteration, state reset between iterations")
    finally:
        ws.close()


# --- instance records ---------------------------------------------------------------
def _instances(ctx, system):
    repeat = 3 if ctx.quick else 9
    counts = INSTANCE_COUNTS[:2] if ctx.quick else INSTANCE_COUNTS
    ws = Workspace(ctx, system, f"instances-{system}")
    try:
        fill(ws, SCALE_TODO, prefix="todo-")
        for count in counts:
            _reset(ws.store)
            _fake_instances(ws.store, count)
            scheduler = _scheduler(ws.store)
            first = scheduler.iteration()  # reads every inbox once, assigns the todo tasks
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                scheduler.iteration()
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            log(f"iteration {system} with {count} instances: {median * 1000:.2f}ms")
            ctx.results.add("iteration-instances", system, median * 1000,
                            {"todo_tasks": SCALE_TODO, "prefetch": 8, "iterations": repeat}, variant=count,
                            note=f"median of steady iterations of one Scheduler after a first one assigned"
                                 f" {first['assign']} tasks")
        for count in INSTANCE_COUNTS[len(counts):]:
            ctx.results.na("iteration-instances", system, "skipped with --quick (10 and 100 only)", variant=count)
    finally:
        ws.close()


# --- the scheduler's CPU per task ---------------------------------------------------
def _schedcost(ctx, system):
    n = (256 if system == RIAK else 1024) if ctx.quick else (1024 if system == RIAK else 8192)
    prefetch = ctx.args.drain_prefetch
    figures = {}
    for logged in (True, False):
        figures[logged] = _schedcost_run(ctx, system, n, prefetch, logged)
    with_log, rounds, _ = figures[True]
    without_log, _, requests = figures[False]
    note = (f"CPU of Scheduler.iteration() per task over {rounds} iterations; {without_log:.0f} µs/task with"
            f" logging off (INFO logging of 2 lines/task: {with_log - without_log:.0f} µs/task)")
    if requests is not None:
        note += f"; the scheduler's requests (node counters): {requests / n:.2f}/task"
    ctx.results.add("scheduler-cpu", system, with_log,
                    {"tasks": n, "instances": ctx.k, "prefetch": prefetch, "logging": "INFO"}, note)


def _schedcost_run(ctx, system, n, prefetch, logged):
    from riaktq_cli.core import protocol
    from riaktq_cli.core.clock import now_us
    from riaktq_cli.store.base import INBOX
    ws = Workspace(ctx, system, f"schedcost-{system}")
    logger = logging.getLogger("riaktq")
    handler = logging.FileHandler(ws.dir / "scheduler.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    saved = logger.level, logger.propagate
    if logged:  # as `riaktq scheduler` logs: INFO, one line per transition
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        fill(ws, n)
        outboxes, taken = {}, {}
        names = _fake_instances(ws.store, ctx.k)
        scheduler = _scheduler(ws.store, prefetch)
        count = ws.http is not None and not logged
        spent, committed, rounds, requests = 0.0, 0, 0, 0 if count else None
        while committed < n:
            before = ws.counters() if count else None
            cpu0 = time.process_time()
            summary = scheduler.iteration()
            spent += time.process_time() - cpu0
            if count:
                after = ws.counters()
                requests += sum((after[k] or 0) - (before[k] or 0) for k in ("get", "put", "2i"))
            committed += summary["commit"]
            rounds += 1
            if rounds > 10 * n // max(1, prefetch) + 20:
                raise RuntimeError(f"scheduler made no progress: {committed}/{n} committed")
            for name in names:  # the workers: drop what is committed, run what is new
                inbox = ws.store.get_record(INBOX, name) or protocol.empty_inbox()
                done = {tuple(k) for k in inbox["committed"]}
                outbox = [r for r in outboxes.get(name, []) if protocol.run_key(r) not in done]
                for entry in inbox["entries"]:
                    if entry["seq"] > taken.get(name, 0):
                        outbox.append(protocol.make_result(entry, "done", protocol.entry_input(entry), now_us(), 10))
                        taken[name] = entry["seq"]
                outboxes[name] = outbox
            _fake_instances(ws.store, ctx.k, outboxes, taken)
        return spent / n * 1e6, rounds, requests
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        ws.close()
