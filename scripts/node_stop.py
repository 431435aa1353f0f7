"""A Riak node stops and rejoins under load (issue 23), on the Riak test server.

Three test-server nodes share one cluster's data; the config names all
three. A scheduler (instance timeout 3 s, `max_attempts` 1) and echo
workers run; `riaktq open --batch` opens N tasks while one node goes through
what `riak stop` does -- webmachine's 404 page to every request for a
second (riak_kv's routes are gone), then connections refused -- and comes
back two seconds later, after which 2i answers leave out what was written
meanwhile for a few seconds (handoff). Then every opened task is waited for.

What must hold: `open` opens every line (exit 0) or exits 3 naming the
lines not opened; no task ends failed (lost) and none is assigned twice
while every worker lives.

    .venv/bin/python scripts/node_stop.py [--tasks 2000] [--workers 4]
"""

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riaktq_cli import config as config_mod  # noqa: E402
from riaktq_cli.errors import StoreUnavailable  # noqa: E402
from riaktq_cli.store import open_store  # noqa: E402


def write_config(workdir, urls):
    path = Path(workdir) / "riaktq.toml"
    nodes = ", ".join(json.dumps(u) for u in urls)
    path.write_text(f'[store]\nbackend = "riak"\n\n[riak]\nnodes = [{nodes}]\nprefix = "stop{int(time.time())}"\n'
                    'timeout = "2s"\n\n[scheduler]\ninterval = "100ms"\ninstance_timeout = "3s"\n'
                    'max_attempts = 1\n\n[worker]\nheartbeat = "200ms"\npoll = "50ms"\n')
    return path


def scenario(workdir, servers, victim, tasks=2000, workers=4, timeout=240.0):
    """Run it; the figures as a dict. `servers`: the test-server nodes of
    one cluster (the config names them all); `victim`: the one that stops."""
    workdir = Path(workdir)
    cfg = write_config(workdir, [s.url for s in servers])
    argv = [sys.executable, "-m", "riaktq_cli", "--config", str(cfg)]
    events = workdir / "events.jsonl"
    batch = workdir / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": f"t{i}", "in": f"v{i}", "max_attempts": 1}) + "\n"
                             for i in range(tasks)))
    logs = [open(workdir / f"{name}.log", "wb") for name in ("scheduler", "workers")]
    daemons = [subprocess.Popen(argv + ["scheduler", "--events", str(events)], stdout=logs[0],
                                stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True),
               subprocess.Popen(argv + ["worker", "--handler", "echo", "--count", str(workers)],
                                stdout=logs[1], stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)]
    store = open_store(config_mod.load(str(cfg)))
    try:
        started = time.monotonic()
        opener = subprocess.Popen(argv + ["open", "--batch", str(batch)], stderr=subprocess.PIPE, cwd=workdir)
        victim.stop_like_riak(stopping_for=1.0, down_for=2.0, handoff_for=5.0)
        _, err = opener.communicate(timeout=timeout)
        opened_s = time.monotonic() - started
        err = err.decode(errors="replace")
        ids = [f"t{i}" for i in range(tasks)]
        finished = _wait_finished(store, ids, started + timeout)
        figures = _figures(finished, events, ids)
        figures.update(tasks=tasks, workers=workers, open_exit=opener.returncode, open_seconds=round(opened_s, 2),
                       open_stderr_tail=err.strip().splitlines()[-2:], drain_seconds=round(time.monotonic() - started, 2),
                       stopping_answers=victim.counts["stopping"],
                       daemons_alive=all(p.poll() is None for p in daemons))
        return figures
    finally:
        for proc in daemons:
            proc.terminate()
        for proc in daemons:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
        store.close()


def _wait_finished(store, ids, deadline):
    """The tasks, once every one that exists is done or failed (or at the deadline)."""
    while True:
        try:
            found = store.get_tasks(ids)
        except StoreUnavailable:
            found = None
        if found is not None and all(t.status in ("done", "failed") for t in found.values()):
            return found
        if time.monotonic() > deadline:
            return found or {}
        time.sleep(0.5)


def _figures(finished, events_path, ids):
    assigns = collections.Counter()
    rollbacks = 0
    if events_path.exists():
        for line in events_path.read_text().splitlines():
            event = json.loads(line)
            if event["transition"] == "assign":
                assigns[event["id"]] += 1
            elif event["transition"] == "rollback":
                rollbacks += 1
    statuses = collections.Counter(t.status for t in finished.values())
    return {"opened": len(finished), "done": statuses["done"], "failed": statuses["failed"],
            "unfinished": len(finished) - statuses["done"] - statuses["failed"],
            "lost_failures": sum(1 for t in finished.values() if t.status == "failed" and t.lost),
            "assigned_twice": sum(1 for n in assigns.values() if n > 1), "rollbacks": rollbacks,
            "missing_ids": len(ids) - len(finished)}


def main():
    from riaktq_testing.riak_sim import RiakTestServer
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    first = RiakTestServer(port=0)
    servers = [first, RiakTestServer(port=0, share_with=first), RiakTestServer(port=0, share_with=first)]
    try:
        with tempfile.TemporaryDirectory() as workdir:
            figures = scenario(workdir, servers, servers[2], args.tasks, args.workers)
    finally:
        for server in servers:
            server.stop()
    print(json.dumps(figures, indent=2))
    ok = (figures["open_exit"] in (0, 3) and figures["failed"] == 0 and figures["assigned_twice"] == 0
          and figures["unfinished"] == 0 and figures["daemons_alive"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
