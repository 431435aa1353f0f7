#!/usr/bin/env python3
"""Benchmarks: riaktq (SQLite and Riak stores) side by side with Huey.

    python scripts/bench.py [--quick] [--out FILE]        (or: make bench)

Every workload runs on riaktq-sqlite, riaktq-riak (the Riak test server of
tests/riak_server.py) and, in the same run on the same machine, Huey with its
SQLite storage (SqliteHuey, installed from PyPI into this interpreter's
environment when missing), so that the ratios mean something on a noisy
machine. Workloads:

  enqueue        N tasks opened from one process (tasks/s); riaktq through
                 the store API in batches of 500 as `riaktq open --batch`
                 does, Huey through `huey.enqueue` (its only public API).
                 Also: one task per call on both (enqueue-single), Huey's
                 storage fed raw batched inserts (enqueue-batch) and
                 `riaktq open --batch FILE` including process start (enqueue-cli).
  drain          N queued tasks, K worker processes, until all are done.
  latency        tasks opened at a steady rate, workers idle and waiting;
                 open -> done (committed) p50/p95/p99, at --interval 100ms
                 and at the default interval (1m).
  iteration-*    one scheduler iteration with 1k..1M finished tasks and
                 100 todo in the store (must stay flat).
  requests-per-task   HTTP requests per task on Riak, open -> committed.
  startup-*      `riaktq --help`, `riaktq open` against `python -c pass`.

Results: a table on stdout and a JSON list of rows
{"workload", "system", "value", "unit"} (+ "note" with the parameters, and
"reason" when the value is null = n/a) in bench-results.json or --out FILE.
"""

import argparse
import atexit
import contextlib
import importlib
import importlib.util
import json
import os
import platform
import resource
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))

SQLITE, RIAK, HUEY = "riaktq-sqlite", "riaktq-riak", "huey-sqlite"
SYSTEMS = (SQLITE, RIAK, HUEY)

# (workload, unit, label, higher_is_better); the order of the table.
WORKLOADS = [
    ("enqueue", "tasks/s", "enqueue (riaktq batches of 500 | huey.enqueue)", True),
    ("enqueue-single", "tasks/s", "enqueue, one task per call", True),
    ("enqueue-batch", "tasks/s", "enqueue, batches of 500 (huey: raw storage inserts)", True),
    ("enqueue-cli", "tasks/s", "enqueue via `riaktq open --batch` (incl. start-up)", True),
    ("drain", "tasks/s", "drain", True),
    ("drain-wall", "s", "drain wall time", False),
    ("drain-cpu", "ms/task", "drain CPU, all processes", False),
    ("scheduler-cpu", "µs/task", "scheduler CPU per task, in-process (commit+assign)", False),
    ("latency-p50", "ms", "latency p50 (interval 100ms)", False),
    ("latency-p95", "ms", "latency p95 (interval 100ms)", False),
    ("latency-p99", "ms", "latency p99 (interval 100ms)", False),
    ("latency-default-p50", "ms", "latency p50 (default interval 1m)", False),
    ("latency-default-p95", "ms", "latency p95 (default interval 1m)", False),
    ("latency-default-p99", "ms", "latency p99 (default interval 1m)", False),
    ("iteration-1k", "ms", "scheduler iteration, 1k finished", False),
    ("iteration-10k", "ms", "scheduler iteration, 10k finished", False),
    ("iteration-100k", "ms", "scheduler iteration, 100k finished", False),
    ("iteration-1m", "ms", "scheduler iteration, 1M finished", False),
    ("requests-per-task", "requests", "HTTP requests per task (prefetch 1)", False),
    ("requests-per-task-p8", "requests", "HTTP requests per task (prefetch 8)", False),
    ("startup-help", "ms", "start-up `riaktq --help` (huey_consumer --help)", False),
    ("startup-open", "ms", "start-up `riaktq open`, embedded store (huey: enqueue from python -c)", False),
    ("startup-open-config", "ms", "start-up `riaktq --config F open` (+ reading TOML)", False),
    ("startup-floor", "ms", "start-up floor `python -c pass`", False),
]
UNITS = {w: u for w, u, _, _ in WORKLOADS}
SCALE_SIZES = [("iteration-1k", 1_000), ("iteration-10k", 10_000),
               ("iteration-100k", 100_000), ("iteration-1m", 1_000_000)]
# Huey has no scheduler interval: its latency run stands beside these rows
# for reference, and a ratio would only restate the interval.
NO_RATIO = {"latency-default-p50", "latency-default-p95", "latency-default-p99"}
# Rows a run must always produce, as a number or an explicit n/a reason.
REQUIRED = [w for w, _, _, _ in WORKLOADS]

# --- results -----------------------------------------------------------------


class Results:
    def __init__(self):
        self.rows = {}

    def add(self, workload, system, value, note=None):
        row = {"workload": workload, "system": system,
               "value": None if value is None else round(float(value), 3), "unit": UNITS[workload]}
        if note:
            row["note"] = note
        self.rows[(workload, system)] = row
        return row

    def na(self, workload, system, reason):
        row = {"workload": workload, "system": system, "value": None, "unit": UNITS[workload],
               "reason": reason}
        self.rows[(workload, system)] = row
        return row

    def fill_missing(self, reason):
        for workload in REQUIRED:
            for system in SYSTEMS:
                if (workload, system) not in self.rows:
                    self.na(workload, system, reason)

    def value(self, workload, system):
        row = self.rows.get((workload, system))
        return None if row is None else row["value"]

    def as_list(self):
        order = {w: i for i, w in enumerate(REQUIRED)}
        return sorted(self.rows.values(),
                      key=lambda r: (order.get(r["workload"], 99), SYSTEMS.index(r["system"])))


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def short_reason(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


# --- processes: own process groups, always cleaned up ------------------------


class Procs:
    """Child processes in process groups of their own, stopped on any exit."""

    def __init__(self):
        self.live = []

    def start(self, argv, *, cwd, log_path, env=None, stdin=subprocess.DEVNULL, stdout=None,
              text=False):
        logf = open(log_path, "ab")
        proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=stdin,
                                stdout=stdout if stdout is not None else logf, stderr=logf,
                                start_new_session=True, text=text)
        proc._bench_log = logf
        self.live.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM, timeout=15.0):
        """Ask the group leader to stop (it stops its own children, which
        then count in RUSAGE_CHILDREN), then kill whatever is left."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        proc._bench_log.close()
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self):
        for proc in list(self.live):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=3.0)


PROCS = Procs()
atexit.register(PROCS.stop_all)


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def cpu_children():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def group_cpu(pgid, *, leader=True, members=True):
    """CPU seconds (user+sys) used so far by the live processes of process
    group `pgid` (the leader, the other members, or both); None off Linux."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) != pgid:
                continue
            is_leader = int(entry) == pgid
            if (is_leader and leader) or (not is_leader and members):
                total += (int(fields[11]) + int(fields[12])) / tick
        return total
    except (OSError, ValueError, IndexError):
        return None


def riaktq_argv():
    script = Path(sys.executable).with_name("riaktq")
    return [str(script)] if script.exists() else [sys.executable, "-m", "riaktq_cli"]


def fmt_ms(seconds):
    return f"{int(round(seconds * 1000))}ms"


# --- Riak: the test server in a process of its own ---------------------------


class RiakServer:
    """`python tests/riak_server.py --port 0` in a process of its own (so it
    shares no GIL with the benchmark's opener and poller); its request
    counters are read and reset through its /__test__/ control paths, which
    it does not count."""

    def __init__(self, workdir):
        self.proc = PROCS.start([sys.executable, str(ROOT / "tests" / "riak_server.py"), "--port", "0"],
                                cwd=workdir, log_path=Path(workdir) / "riak-server.log",
                                stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        first = self.proc.stdout.readline() if ready else ""
        if not first.startswith("listening on "):
            tail = ""
            with contextlib.suppress(OSError):
                lines = (Path(workdir) / "riak-server.log").read_text().strip().splitlines()
                tail = lines[-1] if lines else ""
            self.close()
            raise RuntimeError(f"test server did not start: {(first.strip() or tail)[:200]}")
        self.url = first.split("listening on ", 1)[1].strip()

    def _control(self, name, method="GET"):
        import urllib.request
        req = urllib.request.Request(f"{self.url}/__test__/{name}", method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body.strip() else {}

    def counts(self):
        """{"total": requests answered, "by": {request kind: n}}."""
        raw = self._control("counts")
        total = sum(v for k, v in raw.items() if k.startswith("status_"))
        by = {k: v for k, v in raw.items()
              if not k.startswith("status_") and k not in ("connections", "slowed", "dropped")}
        return {"total": total, "by": by}

    def reset(self):
        self._control("reset", method="POST")

    def close(self):
        PROCS.stop(self.proc, timeout=5.0)


# --- riaktq workspaces ----------------------------------------------------------


class Workspace:
    """A fresh store (and config file) for one workload."""

    def __init__(self, system, root, tag):
        self.system = system
        self.dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
        self.server = None
        if system == SQLITE:
            raw = {"store": {"backend": "sqlite"}, "sqlite": {"path": str(self.dir / "riaktq.db")}}
            text = f'[store]\nbackend = "sqlite"\n[sqlite]\npath = "{self.dir / "riaktq.db"}"\n'
        else:
            self.server = RiakServer(self.dir)
            raw = {"store": {"backend": "riak"}, "riak": {"nodes": [self.server.url]}}
            text = f'[store]\nbackend = "riak"\n[riak]\nnodes = ["{self.server.url}"]\n'
        self.config = self.dir / "riaktq.toml"
        self.config.write_text(text)
        from riaktq_cli.config import from_dict
        from riaktq_cli.store import open_store
        try:
            self.store = open_store(from_dict(raw, self.config))
        except BaseException:
            self.close()
            raise

    def cli(self, *args):
        return riaktq_argv() + ["--config", str(self.config), *args]

    def start(self, name, *args):
        return PROCS.start(self.cli(*args), cwd=self.dir, log_path=self.dir / f"{name}.log")

    def close(self):
        store = getattr(self, "store", None)
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()
        if self.server is not None:
            self.server.close()


def riak_unavailable_reason():
    """Why the Riak rows cannot be measured, or None when they can."""
    if not (ROOT / "tests" / "riak_server.py").exists():
        return "riak store not available: tests/riak_server.py not found"
    if importlib.util.find_spec("riaktq_cli.store.riak") is None:
        return "riak store not available: riaktq_cli/store/riak.py not found"
    return None


def new_tasks(prefix, start, count, now=None):
    from riaktq_cli import task as transitions
    from riaktq_cli.clock import now_us
    return [transitions.new_task(f"{prefix}{i:08d}", b"x", now=now if now is not None else now_us())
            for i in range(start, start + count)]


def fill(store, n, prefix="t", batch=500):
    for start in range(0, n, batch):
        errors = store.create_tasks(new_tasks(prefix, start, min(batch, n - start)))
        if any(errors):
            raise RuntimeError(f"create_tasks refused: {next(e for e in errors if e)}")


def finished_count(store):
    counts = store.count_by_status()
    return counts.get("done", 0) + counts.get("failed", 0)


# --- Huey ----------------------------------------------------------------------


def ensure_huey(install=True):
    """Import huey, installing it into this interpreter's env if missing.
    Returns None when available, else the reason it is not."""
    try:
        import huey  # noqa: F401
        return None
    except ImportError:
        pass
    if not install:
        return "huey not installed (--no-install)"
    log("installing huey into this environment (pip install huey)")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--retries", "1",
                           "--timeout", "15", "huey"], capture_output=True, text=True)
    importlib.invalidate_caches()
    try:
        import huey  # noqa: F401
        return None
    except ImportError:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        return f"huey could not be installed: {lines[-1] if lines else f'pip exit {proc.returncode}'}"


def huey_env(db_path):
    env = dict(os.environ)
    env["RIAKTQ_BENCH_HUEY_DB"] = str(db_path)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def huey_consumer(workdir, db_path, workers):
    argv = [sys.executable, "-m", "huey.bin.huey_consumer", "bench_huey_app.huey",
            "-w", str(workers), "-k", "process"]
    return PROCS.start(argv, cwd=workdir, log_path=Path(workdir) / "consumer.log", env=huey_env(db_path))


def huey_fresh(root, tag):
    import bench_huey_app
    workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
    db = workdir / "huey.db"
    huey, echo = bench_huey_app.make(str(db))
    return workdir, db, huey, echo


def huey_raw_batch(huey, echo, n, batch=500):
    """Huey has no batch enqueue: serialize each message as huey.enqueue
    would and insert a batch per transaction straight into its table."""
    storage = huey.storage
    for start in range(0, n, batch):
        blobs = [huey.serialize_task(echo.s(b"x")) for _ in range(min(batch, n - start))]
        with storage.db(commit=True) as curs:
            curs.executemany("insert into task (queue, data, priority) values (?, ?, ?)",
                             [(storage.name, storage.to_blob(b), 0) for b in blobs])


# --- workloads -----------------------------------------------------------------


class Bench:
    def __init__(self, args, results, root):
        self.args = args
        self.results = results
        self.root = root
        self.quick = args.quick
        self.n = args.n or (500 if args.quick else 10_000)
        self.n_riak = args.n_riak or (200 if args.quick else 2_000)
        self.k = args.workers
        self.huey_reason = None
        self.riak_reason = riak_unavailable_reason()

    def n_for(self, system):
        return self.n_riak if system == RIAK else self.n

    def systems(self):
        return [SQLITE, RIAK]

    def riaktq_run(self, workloads, system, fn):
        """Run fn for one riaktq system; any failure becomes an n/a reason."""
        if system == RIAK and self.riak_reason:
            for w in workloads:
                self.results.na(w, system, self.riak_reason)
            return
        try:
            fn(system)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            reason = short_reason(exc)
            if system == RIAK:
                reason = f"riak store failed: {reason}"
            log(f"{system} {workloads[0]}: {reason}")
            for w in workloads:
                if self.results.value(w, system) is None:
                    self.results.na(w, system, reason)

    def huey_run(self, workloads, fn):
        if self.huey_reason:
            for w in workloads:
                self.results.na(w, HUEY, self.huey_reason)
            return
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            reason = short_reason(exc)
            log(f"huey {workloads[0]}: {reason}")
            for w in workloads:
                if self.results.value(w, HUEY) is None:
                    self.results.na(w, HUEY, reason)

    # 1. enqueue ----------------------------------------------------------------
    def enqueue(self):
        names = ["enqueue", "enqueue-single", "enqueue-batch", "enqueue-cli"]
        for system in self.systems():
            self.riaktq_run(names, system, self._enqueue_riaktq)
        self.huey_run(names, self._enqueue_huey)

    def _enqueue_riaktq(self, system):
        n = self.n_for(system)
        ws = Workspace(system, self.root, f"enqueue-{system}")
        try:
            started = time.perf_counter()
            fill(ws.store, n, prefix="b")
            rate = n / (time.perf_counter() - started)
            self.results.add("enqueue", system, rate, f"N={n}, store.create_tasks in batches of 500")
            self.results.add("enqueue-batch", system, rate, f"N={n}, store.create_tasks in batches of 500")
            started = time.perf_counter()
            for task in new_tasks("s", 0, n):
                ws.store.create_task(task)
            self.results.add("enqueue-single", system, n / (time.perf_counter() - started),
                             f"N={n}, store.create_task per task")
            batch = ws.dir / "tasks.jsonl"
            with open(batch, "w") as fh:
                for i in range(n):
                    fh.write(json.dumps({"id": f"c{i:08d}", "in": "x"}) + "\n")
            started = time.perf_counter()
            proc = subprocess.run(ws.cli("open", "--batch", str(batch)), cwd=ws.dir,
                                  capture_output=True, text=True)
            took = time.perf_counter() - started
            if proc.returncode != 0:
                self.results.na("enqueue-cli", system, f"riaktq open --batch failed: {proc.stderr.strip()[-200:]}")
            else:
                self.results.add("enqueue-cli", system, n / took,
                                 f"N={n}, `riaktq open --batch FILE`, {took:.2f}s incl. process start")
        finally:
            ws.close()

    def _enqueue_huey(self):
        n = self.n
        _dir, _db, huey, echo = huey_fresh(self.root, "enqueue-huey")
        started = time.perf_counter()
        for _ in range(n):
            echo(b"x")
        rate = n / (time.perf_counter() - started)
        self.results.add("enqueue", HUEY, rate, f"N={n}, task() = huey.enqueue per task (no batch API)")
        self.results.add("enqueue-single", HUEY, rate, f"N={n}, task() = huey.enqueue per task")
        started = time.perf_counter()
        huey_raw_batch(huey, echo, n)
        self.results.add("enqueue-batch", HUEY, n / (time.perf_counter() - started),
                         f"N={n}, serialized messages, executemany per 500 in one transaction"
                         " (not a public Huey API)")
        if huey.pending_count() != 2 * n:
            raise RuntimeError(f"huey queue holds {huey.pending_count()} tasks, expected {2 * n}")
        huey.storage.close()
        self.results.na("enqueue-cli", HUEY, "Huey has no command to enqueue tasks")

    # 2. drain --------------------------------------------------------------------
    def drain(self):
        names = ["drain", "drain-wall", "drain-cpu"]
        for system in self.systems():
            self.riaktq_run(names, system, lambda s: self._repeat_drain(s, self._drain_riaktq_once))
        self.huey_run(names, lambda: self._repeat_drain(HUEY, self._drain_huey_once))

    def _repeat_drain(self, system, once):
        """Run the drain `--drain-repeat` times (each on a fresh store) and
        keep the median run by rate: drains of SQLite queues are noisy."""
        repeat = self.args.drain_repeat or (1 if self.quick else 3)
        if system == RIAK and not self.args.drain_repeat:
            repeat = 1  # ~30 s a run, bounded by the Python test server anyway
        runs = []
        for _ in range(repeat):
            runs.append(once(system))
            log(f"drain {system}: {runs[-1]['rate']:.0f} tasks/s, {runs[-1]['cpu_ms']:.3f} ms CPU/task")
        runs.sort(key=lambda r: r["rate"])
        mid = runs[len(runs) // 2]
        spread = ""
        if len(runs) > 1:
            rates = ", ".join(f"{r['rate']:.0f}" for r in runs)
            spread = f", median of {len(runs)} runs (rates {rates}/s)"
        self.results.add("drain", system, mid["rate"], mid["note"] + spread)
        self.results.add("drain-wall", system, mid["took"], mid["note"] + ", from process start to all done" + spread)
        self.results.add("drain-cpu", system, mid["cpu_ms"], mid["note"] + "; CPU " + mid["cpu_note"])

    def _drain_params(self):
        a = self.args
        return a.drain_prefetch, a.drain_interval, a.drain_poll

    def _drain_riaktq_once(self, system):
        n = self.n_for(system)
        prefetch, interval, poll = self._drain_params()
        ws = Workspace(system, self.root, f"drain-{system}")
        try:
            fill(ws.store, n)
            note = (f"N={n}, K={self.k} workers (echo), --prefetch {prefetch} --interval {fmt_ms(interval)}"
                    f" --poll {fmt_ms(poll)}")
            cpu0 = cpu_children()
            started = time.perf_counter()
            sched = ws.start("scheduler", "scheduler", "--interval", fmt_ms(interval),
                             "--prefetch", str(prefetch))
            workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(self.k),
                               "--poll", fmt_ms(poll))
            check_every = 0.05 if system == SQLITE else 0.25
            deadline = started + max(120.0, n / 20)
            try:
                while True:
                    done = finished_count(ws.store)
                    if done >= n:
                        break
                    for p, what in ((sched, "scheduler"), (workers, "workers")):
                        if p.poll() is not None:
                            raise RuntimeError(f"{what} exited with {p.returncode} (see {ws.dir}/{what}.log)")
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
            ws.close()
        return self._drain_run(n, took, note, parts, cpu_all, exclude="riak test server (not in the total)")

    def _drain_run(self, n, took, note, parts, cpu_all, exclude=None):
        if all(v is not None for v in parts.values()):
            cpu = sum(v for k, v in parts.items() if k != exclude)
            cpu_note = ("when all were done (/proc, start-up included, shutdown not): "
                        + ", ".join(f"{k} {v / n * 1000:.3f} ms/task" for k, v in parts.items()))
        else:
            cpu = cpu_all
            cpu_note = "user+sys of all processes, start-up and shutdown included"
        return {"rate": n / took, "took": took, "cpu_ms": cpu / n * 1000, "note": note, "cpu_note": cpu_note}

    def _drain_huey_once(self, _system):
        n = self.n
        workdir, db, huey, echo = huey_fresh(self.root, "drain-huey")
        huey_raw_batch(huey, echo, n)
        note = (f"N={n}, huey_consumer -w {self.k} -k process (defaults otherwise, INFO log to a file),"
                " echo task storing its result")
        cpu0 = cpu_children()
        started = time.perf_counter()
        consumer = huey_consumer(workdir, db, self.k)
        deadline = started + max(120.0, n / 20)
        last, last_at = -1, started
        lost = 0
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
                if consumer.poll() is not None:
                    raise RuntimeError(f"huey_consumer exited with {consumer.returncode} (see {workdir}/consumer.log)")
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
        with contextlib.suppress(OSError):
            locked = (workdir / "consumer.log").read_text(errors="replace").count("database is locked")
            if locked:
                note += f"; {locked} 'database is locked' error(s) in its log"
        if lost:
            note += f"; {lost} task(s) lost (never done), rate over the {n - lost} done"
        run = self._drain_run(n - lost, took, note, parts, cpu_all)
        return run

    # 2b. the scheduler's own cost per task, in one process -------------------
    def schedcost(self):
        name = "scheduler-cpu"
        for system in self.systems():
            self.riaktq_run([name], system, self._schedcost)
        self.results.na(name, HUEY, "Huey has no scheduler: each worker dequeues and stores results itself")

    def _schedcost(self, system):
        """Iterations of a real Scheduler over a store, with the workers'
        side faked in-process (take every inbox entry, put a result in the
        outbox): what the scheduler spends per task, free of process noise."""
        import logging
        from riaktq_cli import protocol
        from riaktq_cli.clock import now_us
        from riaktq_cli.events import EventSink
        from riaktq_cli.scheduler import Scheduler
        from riaktq_cli.store.base import INBOX, INSTANCE
        n = (256 if system == RIAK else 1024) if self.quick else (1024 if system == RIAK else 8192)
        prefetch = self.args.drain_prefetch
        figures = {}
        for logged in (True, False):
            ws = Workspace(system, self.root, f"schedcost-{system}")
            logger = logging.getLogger("riaktq")
            handler = logging.FileHandler(ws.dir / "scheduler.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
            saved = logger.level, logger.propagate
            if logged:  # as `riaktq scheduler` logs: INFO, one line per transition
                logger.addHandler(handler)
                logger.setLevel(logging.INFO)
                logger.propagate = False
            try:
                fill(ws.store, n)
                names = [f"fake-{i}" for i in range(1, self.k + 1)]
                outboxes = {name: [] for name in names}
                taken = dict.fromkeys(names, 0)

                def publish():
                    for name in names:
                        ws.store.put_record(INSTANCE, name, {
                            "name": name, "handler": "echo", "tags": [], "host": "bench", "pid": 0,
                            "started": 0, "heartbeat": now_us(), "status": protocol.IDLE,
                            "taken": taken[name], "queue": [], "current": None, "outbox": outboxes[name]})

                publish()
                scheduler = Scheduler(ws.store, instance_timeout=30, prefetch=prefetch, events=EventSink(None))
                spent, committed, rounds, requests = 0.0, 0, 0, 0
                while committed < n:
                    before = ws.server.counts()["total"] if ws.server and not logged else 0
                    cpu0 = time.process_time()
                    summary = scheduler.iteration()
                    spent += time.process_time() - cpu0
                    if ws.server and not logged:
                        requests += ws.server.counts()["total"] - before
                    committed += summary["commit"]
                    rounds += 1
                    if rounds > 10 * n // max(1, prefetch) + 20:
                        raise RuntimeError(f"scheduler made no progress: {committed}/{n} committed")
                    # the workers: drop what is committed, run what is new
                    for name in names:
                        inbox = ws.store.get_record(INBOX, name) or protocol.empty_inbox()
                        done = {tuple(k) for k in inbox["committed"]}
                        outbox = [r for r in outboxes[name] if protocol.result_key(r) not in done]
                        for entry in inbox["entries"]:
                            if entry["seq"] > taken[name]:
                                outbox.append(protocol.make_result(entry, "done", protocol.entry_input(entry),
                                                                   now_us(), 10))
                                taken[name] = entry["seq"]
                        outboxes[name] = outbox
                    publish()
                figures[logged] = (spent / n * 1e6, rounds)
                if ws.server and not logged:
                    figures["requests"] = requests / n
            finally:
                logger.removeHandler(handler)
                handler.close()
                logger.setLevel(saved[0])
                logger.propagate = saved[1]
                ws.close()
        with_log, rounds = figures[True]
        without_log, _ = figures[False]
        self.results.add("scheduler-cpu", system, with_log,
                         f"N={n}, {self.k} fake instances, prefetch {prefetch}, {rounds} iterations; CPU of"
                         f" Scheduler.iteration() per task; {without_log:.0f} µs/task with logging off"
                         f" (INFO logging of 2 lines/task: {with_log - without_log:.0f} µs/task)"
                         + (f"; the scheduler's HTTP requests: {figures['requests']:.2f}/task"
                            if "requests" in figures else ""))

    # 3. latency --------------------------------------------------------------------
    def latency(self):
        rate = self.args.rate
        window = self.args.latency_seconds or (3.0 if self.quick else 30.0)
        fast = ["latency-p50", "latency-p95", "latency-p99"]
        slow = ["latency-default-p50", "latency-default-p95", "latency-default-p99"]
        for system in self.systems():
            self.riaktq_run(fast, system, lambda s: self._latency_riaktq(s, fast, 0.1, window, rate))
        if self.quick or self.args.skip_default_interval:
            why = "--quick" if self.quick else "--skip-default-interval"
            for system in SYSTEMS:
                self.results.na(slow[0], system, f"skipped with {why}: needs 3 default intervals (3 min)")
                for w in slow[1:]:
                    self.results.na(w, system, f"skipped with {why}")
        else:
            for system in self.systems():
                # One full interval of arrivals, so that every phase of the
                # scheduler's cycle is sampled (steady state).
                self.riaktq_run(slow, system, lambda s: self._latency_riaktq(s, slow, 60.0, 60.0, rate))
        self.huey_run(fast, lambda: self._latency_huey(fast, slow, window, rate))

    def _latency_riaktq(self, system, names, interval, window, rate):
        from riaktq_cli import task as transitions
        from riaktq_cli.clock import now_us
        # The default prefetch (1) cannot keep up with `rate` at a 1m interval
        # (K tasks a minute): size it to the arrivals of one interval.
        prefetch = max(8, int(rate * interval / self.k * 1.5) + 1)
        poll = self.args.latency_poll
        ws = Workspace(system, self.root, f"latency-{system}")
        events = ws.dir / "events.jsonl"
        events.touch()
        note = (f"{rate:g} tasks/s for {window:g}s, K={self.k} echo workers, --interval {fmt_ms(interval)}"
                f" --prefetch {prefetch} --poll {fmt_ms(poll)}; open (cat) -> close committed"
                " (seen in --events)")
        try:
            sched = ws.start("scheduler", "scheduler", "--interval", fmt_ms(interval),
                             "--prefetch", str(prefetch), "--events", str(events))
            workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(self.k),
                               "--poll", fmt_ms(poll))
            try:
                time.sleep(1.0)  # workers registered and idle
                opened, latencies = {}, []
                total = int(rate * window)
                t0 = time.perf_counter()
                deadline = t0 + window + 3 * interval + 30.0
                with open(events) as ev:
                    buf = ""
                    i = 0
                    while len(latencies) < total:
                        now = time.perf_counter()
                        while i < total and now >= t0 + i / rate:
                            task = transitions.new_task(f"l{i:06d}", b"x", now=now_us())
                            ws.store.create_task(task)
                            opened[task.id] = task.cat
                            i += 1
                            now = time.perf_counter()
                        chunk = ev.read()
                        if chunk:
                            seen = time.time()
                            buf += chunk
                            *lines, buf = buf.split("\n")
                            for line in lines:
                                if not line:
                                    continue
                                rec = json.loads(line)
                                if rec.get("transition") == "close" and rec["id"] in opened:
                                    latencies.append(seen - opened.pop(rec["id"]) / 1e6)
                        if now > deadline:
                            raise RuntimeError(f"latency run timed out: {len(latencies)}/{total} done")
                        for p, what in ((sched, "scheduler"), (workers, "workers")):
                            if p.poll() is not None:
                                raise RuntimeError(f"{what} exited with {p.returncode}")
                        wait = 0.005 if i >= total else min(0.005, max(0.0, t0 + i / rate - time.perf_counter()))
                        time.sleep(wait)
            finally:
                PROCS.stop(workers)
                PROCS.stop(sched)
        finally:
            ws.close()
        self._add_percentiles(names, system, latencies, note)

    def _add_percentiles(self, names, system, latencies, note):
        if len(latencies) < 2:
            raise RuntimeError(f"only {len(latencies)} latency sample(s)")
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        for name, value in zip(names, (q[49], q[94], q[98])):
            self.results.add(name, system, value * 1000, note + f", {len(latencies)} tasks")

    def _latency_huey(self, fast, slow, window, rate):
        workdir, db, huey, echo = huey_fresh(self.root, "latency-huey")
        note = (f"{rate:g} tasks/s for {window:g}s, huey_consumer -w {self.k} -k process with default"
                " settings; enqueue -> result stored (seen by polling its kv table)")
        consumer = huey_consumer(workdir, db, self.k)
        watch = sqlite3.connect(str(db), timeout=30)
        try:
            time.sleep(1.0)
            opened, latencies = {}, []
            total = int(rate * window)
            t0 = time.perf_counter()
            deadline = t0 + window + 60.0
            last_rowid = 0
            i = 0
            while len(latencies) < total:
                now = time.perf_counter()
                while i < total and now >= t0 + i / rate:
                    result = echo(b"x")
                    opened[result.id] = time.time()
                    i += 1
                    now = time.perf_counter()
                rows = watch.execute("select rowid, key from kv where rowid > ? order by rowid",
                                     (last_rowid,)).fetchall()
                if rows:
                    seen = time.time()
                    last_rowid = rows[-1][0]
                    for _rowid, key in rows:
                        key = key.decode() if isinstance(key, bytes) else key
                        if key in opened:
                            latencies.append(seen - opened.pop(key))
                if now > deadline:
                    raise RuntimeError(f"latency run timed out: {len(latencies)}/{total} done")
                if consumer.poll() is not None:
                    raise RuntimeError(f"huey_consumer exited with {consumer.returncode}")
                wait = 0.005 if i >= total else min(0.005, max(0.0, t0 + i / rate - time.perf_counter()))
                time.sleep(wait)
        finally:
            watch.close()
            PROCS.stop(consumer, sig=signal.SIGINT)
            huey.storage.close()
        self._add_percentiles(fast, HUEY, latencies, note)
        # Huey has no scheduler interval: the same run stands beside both.
        for f, s in zip(fast, slow):
            row = self.results.rows[(f, HUEY)]
            if (s, HUEY) not in self.results.rows:
                self.results.add(s, HUEY, row["value"], row["note"] + " (the same run; Huey has no interval)")

    # 4. scale ----------------------------------------------------------------------
    def scale(self):
        sizes = SCALE_SIZES[:2] if self.quick else SCALE_SIZES
        for name, _ in SCALE_SIZES[len(sizes):]:
            self.results.na(name, SQLITE, "skipped with --quick (1k and 10k only)")
        self.riaktq_run([n for n, _ in sizes], SQLITE, lambda s: self._scale_sqlite(sizes))
        riak_sizes = [(n, s) for n, s in sizes if s <= self.args.scale_riak_max]
        for name, size in SCALE_SIZES:
            if (name, size) not in riak_sizes:
                why = ("skipped with --quick (1k and 10k only)" if (name, size) not in sizes else
                       f"building {size:,} tasks over HTTP is too slow (--scale-riak-max {self.args.scale_riak_max:,})")
                self.results.na(name, RIAK, why)
        if riak_sizes:
            self.riaktq_run([n for n, _ in riak_sizes], RIAK, lambda s: self._scale_riak(riak_sizes))
        for name, _ in SCALE_SIZES:
            self.results.na(name, HUEY, "Huey has no scheduler iteration: consumers dequeue directly")

    FAKE_INSTANCES = 4
    SCALE_TODO = 100

    def _fake_instances(self, store):
        from riaktq_cli import protocol
        from riaktq_cli.clock import now_us
        from riaktq_cli.store.base import INSTANCE
        for i in range(1, self.FAKE_INSTANCES + 1):
            name = f"fake-{i}"
            store.put_record(INSTANCE, name, {
                "name": name, "handler": "echo", "tags": [], "host": "bench", "pid": 0,
                "started": now_us(), "heartbeat": now_us(), "status": protocol.IDLE, "taken": 0,
                "queue": [], "current": None, "outbox": []})

    def _time_iterations(self, store, reset, repeat):
        from riaktq_cli.events import EventSink
        from riaktq_cli.scheduler import Scheduler
        times, assigned = [], []
        warmup = 3  # caches, statement cache after ANALYZE
        for run in range(repeat + warmup):
            reset()
            self._fake_instances(store)
            scheduler = Scheduler(store, instance_timeout=30, prefetch=8, events=EventSink(None))
            started = time.perf_counter()
            summary = scheduler.iteration()
            took = time.perf_counter() - started
            if run >= warmup:
                times.append(took)
                assigned.append(summary["assign"])
        return statistics.median(times), statistics.median(assigned)

    def _scale_sqlite(self, sizes):
        from riaktq_cli.clock import now_us
        from riaktq_cli.store.sqlite import COLUMNS, SqliteStore
        workdir = Path(tempfile.mkdtemp(prefix="scale-sqlite-", dir=self.root))
        path = workdir / "riaktq.db"
        store = SqliteStore(path)
        db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        db.execute("PRAGMA synchronous = OFF")
        base = now_us() - 10**12
        insert = f"INSERT INTO tasks ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"

        def finished_rows(start, stop):
            for i in range(start, stop):
                cat = base + i * 1000
                yield (f"done-{i:08d}", "done", 0, 0, f"fake-{i % 4 + 1}", b"x", b"x",
                       cat + 10, 50, cat, "[]", 3)

        now = now_us()
        db.execute("BEGIN")
        db.executemany(insert, [(f"todo-{i:04d}", "todo", 0, 0, None, b"x", None, None, None,
                                 now + i, "[]", 1) for i in range(self.SCALE_TODO)])
        db.execute("COMMIT")

        def reset():
            db.execute("UPDATE tasks SET status = 'todo', assignee = NULL, rev = 1 WHERE status = 'nextup'")
            db.execute("DELETE FROM records WHERE kind = 'inbox'")

        have = 0
        repeat = self.args.scale_repeat
        try:
            for name, size in sizes:
                started = time.perf_counter()
                step = 100_000
                for start in range(have, size, step):
                    db.execute("BEGIN")
                    db.executemany(insert, finished_rows(start, min(size, start + step)))
                    db.execute("COMMIT")
                have = size
                db.execute("ANALYZE")
                built = time.perf_counter() - started
                median, assigned = self._time_iterations(store, reset, repeat)
                log(f"scale sqlite {size:,}: built in {built:.1f}s, iteration {median * 1000:.2f}ms")
                self.results.add(name, SQLITE, median * 1000,
                                 f"median of {repeat} iterations, {size:,} done + {self.SCALE_TODO} todo,"
                                 f" {self.FAKE_INSTANCES} live instances, prefetch 8 ({assigned:g} assigned"
                                 " per iteration); state reset between iterations")
        finally:
            db.close()
            store.close()
            shutil.rmtree(workdir, ignore_errors=True)

    def _scale_riak(self, sizes):
        from riaktq_cli import task as transitions
        from riaktq_cli.clock import now_us
        ws = Workspace(RIAK, self.root, "scale-riak")
        store = ws.store
        try:
            fill(store, self.SCALE_TODO, prefix="todo-")
            todo_ids = [f"todo-{i:08d}" for i in range(self.SCALE_TODO)]

            def reset():
                store.update_tasks(
                    [tid for tid, _ in store.nextup_assignees()],
                    lambda t: transitions.rollback(t) if t.status == transitions.NEXTUP else None)
                from riaktq_cli.store.base import INBOX
                for i in range(1, self.FAKE_INSTANCES + 1):
                    store.delete_record(INBOX, f"fake-{i}")

            assert todo_ids
            have = 0
            for name, size in sizes:
                base = now_us() - 10**12
                for start in range(have, size, 500):
                    batch = [transitions.Task(id=f"done-{i:08d}", status="done", assignee="fake-1",
                                              in_=b"x", out=b"x", sat=base + i + 10, laf=50,
                                              cat=base + i, rev=3)
                             for i in range(start, min(size, start + 500))]
                    errors = store.create_tasks(batch)
                    if any(errors):
                        raise RuntimeError(f"create_tasks refused: {next(e for e in errors if e)}")
                have = size
                repeat = max(3, self.args.scale_repeat // 2)
                median, assigned = self._time_iterations(store, reset, repeat)
                log(f"scale riak {size:,}: iteration {median * 1000:.2f}ms")
                self.results.add(name, RIAK, median * 1000,
                                 f"median of {repeat} iterations, {size:,} done + {self.SCALE_TODO} todo,"
                                 f" {self.FAKE_INSTANCES} live instances, prefetch 8 ({assigned:g} assigned)")
        finally:
            ws.close()

    # 5. requests per task on Riak -----------------------------------------------------
    def requests(self):
        for name, prefetch in (("requests-per-task", 1), ("requests-per-task-p8", 8)):
            self.riaktq_run([name], RIAK, lambda s, n=name, p=prefetch: self._requests(n, p))
            self.results.na(name, SQLITE, "SQLite store makes no HTTP requests")
            self.results.na(name, HUEY, "Huey's SQLite storage makes no HTTP requests")

    def _requests(self, name, prefetch):
        m = 40 if self.quick else 200
        interval, poll = 0.1, 0.1
        ws = Workspace(RIAK, self.root, f"requests-p{prefetch}")
        events = ws.dir / "events.jsonl"
        events.touch()
        try:
            ws.server.reset()
            fill(ws.store, m)
            opened = ws.server.counts()
            sched = ws.start("scheduler", "scheduler", "--interval", fmt_ms(interval),
                             "--prefetch", str(prefetch), "--events", str(events))
            workers = ws.start("workers", "worker", "--handler", "echo", "--count", str(self.k),
                               "--poll", fmt_ms(poll))
            try:
                deadline = time.perf_counter() + 60 + m
                while True:  # completion from the events file: polling the store would count
                    closed = sum(1 for line in events.read_text().splitlines() if '"close"' in line)
                    if closed >= m:
                        break
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"timed out: {closed}/{m} committed")
                    time.sleep(0.05)
                total = ws.server.counts()
            finally:
                PROCS.stop(workers)
                PROCS.stop(sched)
        finally:
            ws.close()
        per_open = opened["total"] / m
        per_task = total["total"] / m
        top = sorted(total.get("by", {}).items(), key=lambda kv: -kv[1])[:6]
        detail = ", ".join(f"{k} {v / m:.2f}" for k, v in top)
        self.results.add(name, RIAK, per_task,
                         f"M={m} tasks, prefetch {prefetch}, K={self.k} workers, --interval {fmt_ms(interval)}"
                         f" --poll {fmt_ms(poll)}; open {per_open:.2f}/task (batches of 500), run+commit"
                         f" {per_task - per_open:.2f}/task incl. idle polling" + (f"; by kind: {detail}" if detail else ""))

    # 6. start-up ----------------------------------------------------------------------
    def startup(self):
        runs = self.args.startup_runs or (5 if self.quick else 20)
        workdir = Path(tempfile.mkdtemp(prefix="startup-", dir=self.root))
        # Not named riaktq.toml: `startup-open` runs in workdir with no config
        # at all (the embedded default store, ./riaktq.db); `startup-open-config`
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
        if not self.huey_reason:
            _dir, hdb, huey, _echo = huey_fresh(self.root, "startup-huey")
            huey.storage.close()
            env = huey_env(hdb)
            cases[("startup-help", HUEY)] = lambda: [sys.executable, "-m", "huey.bin.huey_consumer", "--help"]
            cases[("startup-open", HUEY)] = lambda: [
                sys.executable, "-c", "import bench_huey_app as a; a.echo(b'x')"]
        riak_ws = None
        if not self.riak_reason:
            try:
                riak_ws = Workspace(RIAK, self.root, "startup-riak")
                cases[("startup-open", RIAK)] = lambda: riak_ws.cli("open", f"r{next(counter)}", "--in", "x")
            except Exception as exc:
                self.results.na("startup-open", RIAK, f"riak store failed: {short_reason(exc)}")
        times = {key: [] for key in cases}
        try:
            for _ in range(runs + 1):  # round robin, so drift hits every case alike
                for key, argv in cases.items():
                    run_env = env if key[1] == HUEY else None
                    started = time.perf_counter()
                    proc = subprocess.run(argv(), cwd=workdir, env=run_env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE)
                    took = time.perf_counter() - started
                    if proc.returncode != 0:
                        raise RuntimeError(f"{' '.join(argv())[:80]}: exit {proc.returncode}:"
                                           f" {proc.stderr.decode(errors='replace').strip()[-200:]}")
                    times[key].append(took)
        finally:
            if riak_ws is not None:
                riak_ws.close()
        for (workload, system), samples in times.items():
            value = statistics.median(samples[1:]) * 1000
            note = f"median of {runs} runs"
            if system is None:
                for s in SYSTEMS:
                    self.results.add(workload, s, value, note + f" of `{Path(sys.executable).name} -c pass`"
                                     " (the same interpreter for every system)")
            else:
                self.results.add(workload, system, value, note)
        self.results.na("startup-help", RIAK, "the same program as riaktq-sqlite (--help opens no store)")
        self.results.na("startup-open-config", RIAK, "see startup-open: the Riak case always reads a config")
        self.results.na("startup-open-config", HUEY, "Huey has no config file")
        if self.riak_reason:
            self.results.na("startup-open", RIAK, self.riak_reason)
        if self.huey_reason:
            for w in ("startup-help", "startup-open"):
                self.results.na(w, HUEY, self.huey_reason)


# --- output ------------------------------------------------------------------------


def fmt_value(row, notes):
    if row is None:
        return "-"
    if row["value"] is None:
        reason = row.get("reason", "n/a")
        if reason not in notes:
            notes[reason] = len(notes) + 1
        return f"n/a [{notes[reason]}]"
    v, unit = row["value"], row["unit"]
    if unit == "tasks/s":
        return f"{v:,.0f}/s"
    if unit == "ms" and v >= 10_000:
        return f"{v / 1000:,.1f} s"
    if unit == "ms":
        return f"{v:,.2f} ms" if v < 10 else f"{v:,.1f} ms"
    if unit == "s":
        return f"{v:,.2f} s"
    if unit == "µs/task":
        return f"{v:,.0f} µs"
    if unit == "ms/task":
        return f"{v:.3f} ms"
    return f"{v:,.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}×"


def checks(results, quick):
    def v(w, s):
        return results.value(w, s)

    out = []

    def check(label, value, limit, ok):
        if value is None:
            out.append((label, "n/a", limit, "n/a"))
        else:
            out.append((label, f"{value:.2f}×", limit, "PASS" if ok(value) else "FAIL"))

    def r(a, b):
        return None if a is None or b is None or b == 0 else a / b

    check("drain riaktq-sqlite / huey-sqlite", r(v("drain", SQLITE), v("drain", HUEY)), "≥ 1.5×",
          lambda x: x >= 1.5)
    check("enqueue riaktq-sqlite / huey-sqlite", r(v("enqueue", SQLITE), v("enqueue", HUEY)), "≥ 1.0×",
          lambda x: x >= 1.0)
    top = "iteration-10k" if quick else "iteration-1m"
    check(f"{top} / iteration-1k (sqlite)", r(v(top, SQLITE), v("iteration-1k", SQLITE)), "≤ 1.5×",
          lambda x: x <= 1.5)
    check("startup-open / python -c pass (sqlite)", r(v("startup-open", SQLITE), v("startup-floor", SQLITE)),
          "≤ 2.5×", lambda x: x <= 2.5)
    return out


def render(results, args, header):
    from tabulate import tabulate
    notes = {}
    table = []
    for workload, unit, label, higher in WORKLOADS:
        rows = [results.rows.get((workload, s)) for s in SYSTEMS]
        vals = [None if r is None else r["value"] for r in rows]
        cells = [fmt_value(r, notes) for r in rows]
        if workload in NO_RATIO:  # Huey's figure stands beside them for reference only
            table.append([label + ("" if higher else " ↓"), *cells, "-", "-"])
            continue
        table.append([label + ("" if higher else " ↓"), *cells, ratio(vals[0], vals[2]), ratio(vals[1], vals[2])])
    lines = [header, "",
             tabulate(table, headers=["workload (↓ = lower is better)", SQLITE, RIAK, HUEY,
                                      "sqlite/huey", "riak/huey"],
                      tablefmt="github", colalign=("left", "right", "right", "right", "right", "right")),
             ""]
    if notes:
        lines.append("n/a:")
        for reason, number in notes.items():
            lines.append(f"  [{number}] n/a ({reason})")
        lines.append("")
    lines.append("parameters:")
    for workload, *_ in WORKLOADS:
        for system in SYSTEMS:
            row = results.rows.get((workload, system))
            if row and row.get("note") and row["value"] is not None:
                lines.append(f"  {workload} / {system}: {row['note']}")
    lines.append("")
    lines.append(tabulate(checks(results, args.quick), headers=["check", "measured", "goal", "result"],
                          tablefmt="github"))
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------


def parse_args(argv=None):
    def duration(text):
        from riaktq_cli.durations import parse_duration
        return parse_duration(text, "duration")

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small N, short runs (the test suite's mode)")
    p.add_argument("--out", default="bench-results.json", help="JSON rows (default: bench-results.json)")
    p.add_argument("-n", type=int, help="tasks for enqueue/drain (default 10000, quick 500)")
    p.add_argument("--n-riak", type=int, help="tasks on the Riak test server (default 2000, quick 200)")
    p.add_argument("--workers", type=int, default=4, help="worker processes K (default 4)")
    p.add_argument("--drain-prefetch", type=int, default=128)
    p.add_argument("--drain-interval", type=duration, default=0.05)
    p.add_argument("--drain-poll", type=duration, default=0.02)
    p.add_argument("--drain-repeat", type=int, help="drain runs per system, median kept (default 3, quick 1)")
    p.add_argument("--rate", type=float, default=50.0, help="latency: tasks opened per second")
    p.add_argument("--latency-seconds", type=float, help="latency: how long to open tasks (30, quick 3)")
    p.add_argument("--latency-poll", type=duration, default=0.05, help="latency: workers' --poll")
    p.add_argument("--skip-default-interval", action="store_true",
                   help="skip the latency run at the default 1m interval (takes 3 minutes)")
    p.add_argument("--scale-repeat", type=int, default=25, help="timed iterations per store size")
    p.add_argument("--scale-riak-max", type=int, default=10_000)
    p.add_argument("--startup-runs", type=int)
    p.add_argument("--only", help="comma-separated workload groups: " + ",".join(GROUPS))
    p.add_argument("--no-install", action="store_true", help="do not pip install huey when missing")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, stores)")
    p.add_argument("--check", action="store_true", help="exit 1 when a goal check fails")
    return p.parse_args(argv)


GROUPS = ("enqueue", "drain", "schedcost", "latency", "scale", "requests", "startup")


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    results = Results()
    root = Path(tempfile.mkdtemp(prefix="riaktq-bench-"))
    bench = Bench(args, results, root)
    bench.huey_reason = ensure_huey(install=not args.no_install)
    if bench.huey_reason:
        log(bench.huey_reason)
    if bench.riak_reason:
        log(bench.riak_reason)
    groups = GROUPS if not args.only else [g.strip() for g in args.only.split(",")]
    header = (f"riaktq benchmarks{' (--quick)' if args.quick else ''}: {os.cpu_count()} cores,"
              f" Python {platform.python_version()} ({platform.python_implementation()}),"
              f" SQLite {sqlite3.sqlite_version}, {platform.platform(terse=True)}")
    if not bench.huey_reason:
        import huey
        header += f", huey {huey.__version__}"
    try:
        for group in groups:
            if group not in GROUPS:
                raise SystemExit(f"unknown workload group {group!r} (known: {', '.join(GROUPS)})")
            log(f"{group} ...")
            started = time.perf_counter()
            getattr(bench, group)()
            log(f"{group} done in {time.perf_counter() - started:.1f}s")
    finally:
        PROCS.stop_all()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if not args.only:
        results.fill_missing("not measured")
    rows = results.as_list()
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    print(render(results, args, header))
    print(f"\nwrote {args.out} ({len(rows)} rows)")
    if args.check and any(c[3] == "FAIL" for c in checks(results, args.quick)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
