"""Celery and RQ on Redis beside riaktq: are they there, a Redis of the
run's own, their workers, and how the bench sees a task done.

The peers a Riak operator would weigh instead of riaktq need a Redis server:
the bench starts its own `redis-server` for each workload (a temporary
directory, a free loopback port, no persistence) and stops it after, so a
run leaves nothing behind and never touches a Redis the machine already has.
`redis-server` comes from the system (`apt-get install redis-server`); the
Python packages (celery, rq, redis) from `make bench`. The bench installs
nothing: a missing piece leaves the peer rows n/a with one reason saying how
to get it.

"Done" is seen without polling the queue: Celery's Redis result backend
PUBLISHes every result on the channel named by its key, so the bench holds
one PSUBSCRIBE to `celery-task-meta-*`; RQ publishes nothing, so the bench's
server turns on keyspace notifications for stream commands (`Kt`) and the
bench PSUBSCRIBEs to the XADD of each job's result stream
(`rq:results:<id>`), which RQ writes in the transaction that finishes the
job. Either way one message per task reaches one subscriber; no key is read.
"""

import contextlib
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.procs import PROCS, group_cpu, wait_until
from scripts.bench.results import CELERY, RQ

ROOT = Path(__file__).resolve().parents[2]
URL_ENV = "RIAKTQ_BENCH_REDIS_URL"
PACKAGES = {CELERY: ("celery", "redis"), RQ: ("rq", "redis")}
GET_REDIS = ("redis-server is not on PATH: `apt-get install redis-server` (Debian/Ubuntu; elsewhere the "
             "system's redis package or a build from redis.io), then `make bench` installs celery, rq and redis")


def missing(systems=(CELERY, RQ)):
    """{system: None when it can be measured, else the one line that says how to get it}."""
    if shutil.which("redis-server") is None:
        return {s: GET_REDIS for s in systems}
    out = {}
    for system in systems:
        absent = [p for p in PACKAGES[system] if importlib.util.find_spec(p) is None]
        out[system] = None if not absent else (
            f"{' and '.join(absent)} not installed: run `make bench` (installs celery, rq and redis into .venv), "
            f"or `{sys.executable} -m pip install {' '.join(absent)}`")
    return out


def versions():
    """'celery 5.7.0, rq 3.0.0, redis-server 7.0.15' for the header (what is there)."""
    from importlib.metadata import PackageNotFoundError, version
    parts = []
    for name in ("celery", "rq"):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{name} {version(name)}")
    server = shutil.which("redis-server")
    if server:
        import subprocess
        out = subprocess.run([server, "--version"], capture_output=True, text=True, timeout=10).stdout
        word = next((w for w in out.split() if w.startswith("v=")), "v=?")
        parts.append(f"redis-server {word[2:]}")
    return ", ".join(parts)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """`redis-server` on a free loopback port in a directory of its own,
    nothing saved; `url` once it answers PING."""

    def __init__(self, workdir):
        import redis
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
        port = _free_port()
        self.proc = PROCS.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                                 "--save", "", "--appendonly", "no"],
                                cwd=self.dir, log_path=self.dir / "redis.log")
        self.url = f"redis://127.0.0.1:{port}/0"
        self.client = redis.Redis.from_url(self.url)

        def answers():
            with contextlib.suppress(redis.ConnectionError):
                return self.client.ping()
        wait_until(answers, 20, "redis-server to answer PING", every=0.02, alive={"redis-server": self.proc})

    def cpu(self):
        return group_cpu(self.proc.pid)

    def close(self):
        self.client.close()
        PROCS.stop(self.proc)


class Done:
    """Task ids done, from one pattern subscription: poll() -> [(id, seen)]
    with `seen` the wall-clock time the bench read the message."""

    def __init__(self, server, pattern, prefix):
        self.prefix = prefix
        self.pubsub = server.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(pattern)
        self.count = 0
        self.first = None          # perf_counter of the first done

    def poll(self, timeout=0.0):
        out = []
        message = self.pubsub.get_message(timeout=timeout)
        while message is not None:
            if message["type"] == "pmessage":
                out.append((message["channel"].decode()[len(self.prefix):], time.time()))
            message = self.pubsub.get_message(timeout=0.0)
        if out and self.first is None:
            self.first = time.perf_counter()
        self.count += len(out)
        return out

    def close(self):
        self.pubsub.close()


def _env(url):
    env = dict(os.environ)
    env[URL_ENV] = url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


class Peer:
    """One peer on one fresh Redis: enqueue, its workers, its done messages."""

    system = name = None

    def __init__(self, root, tag, workers):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
        self.k = workers
        self.server = RedisServer(self.workdir)
        self.procs = []
        self.done = None
        try:
            self.setup()
        except BaseException:
            self.close()
            raise

    def alive(self):
        """The processes that must keep running, by name (for check_alive)."""
        named = {f"{self.system} process {i + 1}": p for i, p in enumerate(self.procs)}
        named["redis-server"] = self.server.proc
        return named

    def wait_ready(self, timeout=60.0):
        """Workers take tasks: a burst of 8k warm-up tasks is done, seen like any
        other (a burst, so that every pool process has connected and run one:
        Celery's first task in a process took tens of ms)."""
        self.ready_condition(timeout)
        pending = {self.enqueue() for _ in range(8 * self.k)}

        def all_done():
            pending.difference_update(task_id for task_id, _seen in self.done.poll())
            return not pending
        wait_until(all_done, timeout, f"{8 * self.k} warm-up tasks on {self.system}", every=0.01, alive=self.alive())

    def ready_condition(self, timeout):
        pass

    def stop_workers(self):
        for proc in self.procs:
            PROCS.stop(proc)
        self.procs = []

    def close(self):
        self.stop_workers()
        if self.done is not None:
            self.done.close()
        self.server.close()


class CeleryPeer(Peer):
    """`celery -A scripts.bench.celery_app worker --concurrency K --pool prefork`, defaults otherwise."""

    system, name = CELERY, "Celery"
    flags = "worker --concurrency {k} --pool prefork"
    seen = "result PUBLISHed by Celery's Redis backend, read from one PSUBSCRIBE"

    def setup(self):
        from scripts.bench import celery_app
        self.app, self.echo = celery_app.make(self.server.url)
        self.done = Done(self.server, "celery-task-meta-*", "celery-task-meta-")

    def enqueue(self):
        return self.echo.delay("x").id

    def enqueue_many(self, n):
        for _ in range(n):
            self.echo.delay("x")

    def start_workers(self):
        argv = [sys.executable, "-m", "celery", "-A", "scripts.bench.celery_app", "worker",
                "--concurrency", str(self.k), "--pool", "prefork"]
        self.procs = [PROCS.start(argv, cwd=self.workdir, log_path=self.workdir / "celery.log",
                                  env=_env(self.server.url))]

    def cpu_parts(self):
        pid = self.procs[0].pid
        return {"celery main": group_cpu(pid, members=False), "pool processes": group_cpu(pid, leader=False)}

    def close(self):
        with contextlib.suppress(Exception):
            self.app.close()
        super().close()


class RQPeer(Peer):
    """K `rq worker` processes on the default queue, defaults otherwise
    (rq.Worker: a forked work horse per job)."""

    system, name = RQ, "RQ"
    flags = "{k} × rq worker (a work horse forked per job)"
    seen = "keyspace notification of the XADD to rq:results:<id> (notify-keyspace-events Kt), one PSUBSCRIBE"

    def setup(self):
        from rq import Queue
        from scripts.bench import rq_app
        self.server.client.config_set("notify-keyspace-events", "Kt")
        self.queue = Queue(connection=self.server.client)
        self.func = rq_app.echo
        self.done = Done(self.server, "__keyspace@0__:rq:results:*", "__keyspace@0__:rq:results:")

    def enqueue(self):
        return self.queue.enqueue(self.func, "x").id

    def enqueue_many(self, n, batch=500):
        from rq import Queue
        for start in range(0, n, batch):
            self.queue.enqueue_many([Queue.prepare_data(self.func, ("x",)) for _ in range(min(batch, n - start))])

    def start_workers(self):
        argv = [sys.executable, "-m", "rq.cli", "worker", "--url", self.server.url]  # = `rq worker`
        self.procs = [PROCS.start(argv, cwd=self.workdir, log_path=self.workdir / f"rq-worker-{i + 1}.log",
                                  env=_env(self.server.url)) for i in range(self.k)]

    def ready_condition(self, timeout):
        from rq import Worker
        wait_until(lambda: Worker.count(connection=self.server.client) >= self.k, timeout,
                   f"{self.k} rq workers registered", every=0.05, alive=self.alive())

    def cpu_parts(self):
        # A work horse lives for one job: its CPU is in its rq worker's cutime once reaped.
        ticks = [_ticks_with_reaped(p.pid) for p in self.procs]
        if any(t is None for t in ticks):
            return {"rq workers (work horses included)": None}
        return {"rq workers (work horses included)": sum(ticks) / os.sysconf("SC_CLK_TCK")}


def _ticks_with_reaped(pid):
    """utime+stime of `pid` and of the children it has waited for (/proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15])
    except (OSError, ValueError, IndexError):
        return None


PEERS = {CELERY: CeleryPeer, RQ: RQPeer}
