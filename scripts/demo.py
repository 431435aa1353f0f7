"""`make demo`: the whole queue on the embedded store in about ten seconds.

Starts a scheduler and five echo workers on a fresh SQLite store in
./.demo, opens a batch of tasks and one that waits for its result, shows
the tasks and the instances, then stops everything cleanly. Every step is
an ordinary `riaktq` command, printed before it runs, so the demo doubles
as a tour of the command line.
"""

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
CONFIG = DEMO / "riaktq.toml"
TASKS = 20


def riaktq(*args):
    return [sys.executable, "-m", "riaktq_cli", "--config", str(CONFIG), *args]


def show(args):
    print("$ riaktq " + shlex.join(args[5:]), flush=True)


def run(*args, **kw):
    cmd = riaktq(*args)
    show(cmd)
    result = subprocess.run(cmd, **kw)
    if result.returncode != 0:
        raise SystemExit(f"demo: riaktq {' '.join(args)} exited {result.returncode}")
    return result


def start(*args):
    cmd = riaktq(*args)
    show(cmd)
    return subprocess.Popen(cmd + [], stderr=open(DEMO / f"{args[0]}.log", "wb"))


def count_done():
    out = subprocess.run(riaktq("tasks", "--status", "done", "--limit", "0", "--format", "json"),
                         capture_output=True, check=True).stdout
    return len(json.loads(out))


def main():
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    run("init", str(CONFIG))
    text = CONFIG.read_text().replace('interval = "1m"', 'interval = "200ms"', 1)
    text = text.replace('instance_timeout = "30s"', 'instance_timeout = "5s"')
    CONFIG.write_text(text)
    print(f"(every command below runs with --config {CONFIG.relative_to(ROOT)}: scheduler interval"
          " 200ms, the rest as `riaktq init` wrote it)\n")

    procs = [start("scheduler", "--events", str(DEMO / "events.jsonl")),
             start("worker", "--handler", "echo", "--count", "5")]
    try:
        batch = DEMO / "tasks.jsonl"
        batch.write_text("".join(json.dumps({"id": f"greet-{i:02d}", "in": f"hello #{i}",
                                             "priority": i % 3}) + "\n" for i in range(TASKS)))
        run("open", "--batch", str(batch))
        run("open", "urgent", "--in", "the answer is 42", "--priority", "9", "--wait", "--timeout", "30s")
        print()
        deadline = time.monotonic() + 60
        while count_done() < TASKS + 1:
            if time.monotonic() > deadline:
                raise SystemExit("demo: tasks did not finish within a minute; see .demo/*.log")
            time.sleep(0.3)
        run("tasks")
        run("instances")
        run("get", "urgent")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    closes = sum(1 for line in open(DEMO / "events.jsonl") if '"transition": "close"' in line)
    print(f"\nAll {TASKS + 1} tasks done, {closes} close events; scheduler and 5 workers stopped.")
    print(f"Logs and the store are in {DEMO.relative_to(ROOT)}/ ; run `make test` for the test suite.")


if __name__ == "__main__":
    main()
