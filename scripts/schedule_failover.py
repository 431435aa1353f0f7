"""A schedule every 2 s through a minute of scheduler kills (issue 21).

    python -m scripts.schedule_failover [--store sqlite|riak] [--riak-url URL]
        [--seconds 60] [--every 2s] [--kills 3]

Starts a scheduler and a standby on a fresh queue (SQLite in a temporary
directory, or the Riak test server, or the node --riak-url names), with one
`[[schedule]]` every 2 s (catch_up "all"). Through the run it kills the
lease holder with SIGKILL `--kills` times, evenly spaced; each time the
standby takes over and a new standby starts. Then it lists every task the
schedule opened, with how late each was opened, and checks that every slot
from the first to the last was opened exactly once: no gap (a skipped slot),
no id opened by two schedulers (their logs say which one opened each).
Exit 0 when that holds, 1 when not.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def riaktq(config, *args):
    return [sys.executable, "-m", "riaktq_cli", "--config", str(config), *args]


def start(config, workdir, name):
    log = open(Path(workdir) / f"{name}.log", "wb")
    proc = subprocess.Popen(riaktq(config, "scheduler"), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log_path, proc.label = log.name, name
    return proc


def holder_of(config):
    """The pid in the lease holder's owner name (host:pid), if any."""
    from riaktq_cli import config as config_file
    from riaktq_cli.clock import now_us
    from riaktq_cli.lease import winner
    from riaktq_cli.store import open_store
    store = open_store(config_file.load(str(config)))
    try:
        lease = winner(store.read_lease(), now_us())
    finally:
        store.close()
    return int(lease["owner"].rsplit(":", 1)[1]) if lease else None


def slot_of(task_id):
    text = task_id.split("@", 1)[1].rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S" if text.count(":") == 2 else "%Y-%m-%dT%H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "riak"), default="sqlite")
    parser.add_argument("--riak-url", help="A Riak node (default: the Riak test server, started here)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", default="2s")
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="riaktq-schedule-"))
    config = workdir / "riaktq.toml"
    server = None
    if args.store == "riak":
        url = args.riak_url
        if url is None:
            server = subprocess.Popen([sys.executable, "-m", "riaktq_testing.riak_sim", "--port", "0"],
                                      stdout=subprocess.PIPE, text=True, cwd=workdir)
            url = server.stdout.readline().split("listening on ", 1)[1].strip()
        store = f'[store]\nbackend = "riak"\n[riak]\nnodes = ["{url}"]\nprefix = "sf{os.getpid()}"\n'
    else:
        store = f'[store]\nbackend = "sqlite"\n[sqlite]\npath = "{workdir / "riaktq.db"}"\n'
    config.write_text(store + '[scheduler]\ninterval = "200ms"\ninstance_timeout = "4s"\n'
                      '[worker]\nheartbeat = "500ms"\n'
                      f'[[schedule]]\nname = "tick"\nevery = "{args.every}"\ncatch_up = "all"\nin = "tick"\n')
    procs = [start(config, workdir, "scheduler-1"), start(config, workdir, "scheduler-2")]
    began = time.time()
    print(f"{args.store} store, schedule every {args.every}, {args.seconds:g} s, {args.kills} kill -9 of the "
          f"lease holder (work dir {workdir})", flush=True)
    try:
        for n in range(1, args.kills + 1):
            time.sleep(max(0.0, began + n * args.seconds / (args.kills + 1) - time.time()))
            pid = holder_of(config)
            victim = next((p for p in procs if p.pid == pid and p.poll() is None), None)
            if victim is None:
                print(f"  {time.time() - began:5.1f}s: no live holder to kill", flush=True)
                continue
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            procs.append(start(config, workdir, f"scheduler-{len(procs) + 1}"))
            print(f"  {time.time() - began:5.1f}s: kill -9 {victim.label} (pid {victim.pid}); "
                  f"started scheduler-{len(procs)} as the new standby", flush=True)
        time.sleep(max(0.0, began + args.seconds - time.time()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    tasks = json.loads(subprocess.run(riaktq(config, "tasks", "--limit", "0", "--format", "json"),
                                      capture_output=True, check=True).stdout)
    if server is not None:
        server.terminate()
    opened_by = {}
    for proc in procs:
        for line in open(proc.log_path, encoding="utf-8", errors="replace"):
            if "schedule tick: opened " in line:
                opened_by.setdefault(line.split()[-1], []).append(proc.label)
    tasks = sorted((t for t in tasks if t["id"].startswith("tick@")), key=lambda t: slot_of(t["id"]))
    period = slot_of(tasks[1]["id"]) - slot_of(tasks[0]["id"]) if len(tasks) > 1 else 0
    print(f"\n{len(tasks)} tasks opened:")
    for t in tasks:
        late = t["cat"] / 1e6 - slot_of(t["id"])
        print(f"  {t['id']}  opened {late:5.2f}s after its slot by {', '.join(opened_by.get(t['id'], ['?']))}")
    slots = [slot_of(t["id"]) for t in tasks]
    gaps = [(a, b) for a, b in zip(slots, slots[1:]) if round(b - a, 3) != round(period, 3)]
    twice = {i: who for i, who in opened_by.items() if len(who) > 1}
    ok = len(tasks) > 1 and not gaps and not twice and set(opened_by) == {t["id"] for t in tasks}
    print(f"\nevery slot from {tasks[0]['id'] if tasks else '-'} to {tasks[-1]['id'] if tasks else '-'} "
          f"opened exactly once: {'yes' if ok else 'NO'}" + (f" (gaps: {gaps})" if gaps else "")
          + (f" (twice: {twice})" if twice else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
