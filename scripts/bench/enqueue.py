"""Enqueue: N tasks opened from one process.

riaktq through the store API in batches of 500 (as `riaktq open --batch`
does) and one task per call, and through `riaktq open --batch FILE`
including process start; Huey through `huey.enqueue` (its only public API)
and, for a like-for-like batch figure, its storage fed raw batched inserts.
"""

import json
import subprocess
import time

from scripts.bench import huey_tools
from scripts.bench.results import HUEY, Figure
from scripts.bench.sites import Workspace, fill, new_tasks

GROUP = "enqueue"
FIGURES = [
    Figure("enqueue", "tasks/s", "enqueue (riaktq batches of 500 | huey.enqueue)"),
    Figure("enqueue-single", "tasks/s", "enqueue, one task per call"),
    Figure("enqueue-batch", "tasks/s", "enqueue, batches of 500 (huey: raw storage inserts)"),
    Figure("enqueue-cli", "tasks/s", "enqueue via `riaktq open --batch` (incl. start-up)"),
]
NAMES = [f.workload for f in FIGURES]


def run(ctx):
    for system in ctx.riaktq_systems():
        ctx.riaktq_run(NAMES, system, lambda s: _riaktq(ctx, s))
    ctx.huey_run(NAMES, lambda: _huey(ctx))


def _riaktq(ctx, system):
    n = ctx.n_for(system)
    add = ctx.results.add
    ws = Workspace(ctx, system, f"enqueue-{system}")
    try:
        started = time.perf_counter()
        fill(ws, n, prefix="b")
        rate = n / (time.perf_counter() - started)
        params = {"tasks": n, "api": "store.create_tasks, batches of 500"}
        add("enqueue", system, rate, params)
        add("enqueue-batch", system, rate, params)
        tasks = new_tasks("s", 0, n)
        ws.created(t.id for t in tasks)
        started = time.perf_counter()
        for task in tasks:
            ws.store.create_task(task)
        add("enqueue-single", system, n / (time.perf_counter() - started),
            {"tasks": n, "api": "store.create_task per task"})
        batch = ws.dir / "tasks.jsonl"
        ids = [f"c{i:08d}" for i in range(n)]
        ws.created(ids)
        batch.write_text("".join(json.dumps({"id": i, "in": "x"}) + "\n" for i in ids))
        started = time.perf_counter()
        proc = subprocess.run(ws.cli("open", "--batch", str(batch)), cwd=ws.dir, capture_output=True, text=True)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            ctx.results.na("enqueue-cli", system, f"riaktq open --batch failed: {proc.stderr.strip()[-200:]}")
        else:
            add("enqueue-cli", system, n / took, {"tasks": n, "command": "riaktq open --batch FILE"},
                f"{took:.2f}s including process start")
    finally:
        ws.close()


def _huey(ctx):
    n = ctx.n
    _dir, _db, huey, echo = huey_tools.fresh(ctx.root, "enqueue-huey")
    started = time.perf_counter()
    for _ in range(n):
        echo(b"x")
    rate = n / (time.perf_counter() - started)
    ctx.results.add("enqueue", HUEY, rate, {"tasks": n, "api": "huey.enqueue per task (no batch API)"})
    ctx.results.add("enqueue-single", HUEY, rate, {"tasks": n, "api": "huey.enqueue per task"})
    started = time.perf_counter()
    huey_tools.raw_batch(huey, echo, n)
    ctx.results.add("enqueue-batch", HUEY, n / (time.perf_counter() - started),
                    {"tasks": n, "api": "serialized messages, executemany per 500 in one transaction"},
                    "not a public Huey API")
    if huey.pending_count() != 2 * n:
        raise RuntimeError(f"huey queue holds {huey.pending_count()} tasks, expected {2 * n}")
    huey.storage.close()
    ctx.results.na("enqueue-cli", HUEY, "Huey has no command to enqueue tasks")
