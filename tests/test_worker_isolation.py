"""Issue 18, the worker's part: what a handler writes and starts stays in
bounds, on both stores, with real worker processes.

- Defect 3: a log whose reader is gone (a dead pipe, `2>&-`) fails no task.
- Defect 4: a time limit or a cancel kills what the handler started, even
  a grandchild that left its session and its parent.
- Defect 6: `--log-format json` is one JSON object a line, whatever the
  handler writes and however the process ends.
- Defect 12: a zombie does not hold a name; the name check uses the
  scheduler's published instance timeout.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from riaktq_cli import protocol, scheduler_settings
from riaktq_cli.clock import now_us
from riaktq_cli.store.base import INSTANCE
from tests.conftest import wait_until
from tests.test_worker_reliability import alive, give, outbox, record, registered

HERE = Path(__file__).resolve().parent
CHATTY = str(HERE / "handlers_for_tests" / "chatty.py")
ESCAPER = str(HERE / "handlers_for_tests" / "escaper.py")


def start_raw(procs, *args, **popen):
    """A riaktq process with the given stdio (procs.start logs to a file)."""
    proc = subprocess.Popen(procs.argv(*args), cwd=procs.tmp_path, start_new_session=True, **popen)
    procs.procs.append(proc)
    return proc


def all_done(store, name, ids):
    box = outbox(store, name)
    return set(ids) <= set(box) and box


# --- defect 3: a dead log reader ------------------------------------------------------------

def test_a_worker_whose_log_reader_exited_fails_no_task(store, procs):
    worker = start_raw(procs, "worker", "--handler", CHATTY, "--name", "w1",
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    worker.stderr.close()   # the log shipper died
    ids = [f"t{i}" for i in range(5)]
    give(store, "w1", [(i, i) for i in ids])
    box = wait_until(lambda: all_done(store, "w1", ids), timeout=30, message="every task ended")
    assert {i: box[i]["status"] for i in ids} == {i: "done" for i in ids}
    assert [protocol.result_output(box[i]) for i in ids] == [i.encode() for i in ids]
    assert worker.poll() is None, "the worker keeps running"
    wait_until(lambda: record(store, "w1").get("log_lost", 0) >= 5, message="the lost lines counted")
    assert procs.stop(worker) == 0


def test_a_worker_started_with_stderr_closed_fails_no_task(store, procs):
    argv = procs.argv("worker", "--handler", CHATTY, "--name", "w1")
    worker = subprocess.Popen(["sh", "-c", 'exec "$@" 2>&-', "sh", *argv], cwd=procs.tmp_path,
                              start_new_session=True, stdout=subprocess.DEVNULL)
    procs.procs.append(worker)
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    ids = [f"t{i}" for i in range(5)]
    give(store, "w1", [(i, i) for i in ids])
    box = wait_until(lambda: all_done(store, "w1", ids), timeout=30, message="every task ended")
    assert {i: box[i]["status"] for i in ids} == {i: "done" for i in ids}
    assert worker.poll() is None
    assert procs.stop(worker) == 0


# --- defect 4: descendants escape the kill -------------------------------------------------------

def grandchild_of_a_hung_task(store, procs, tmp_path, *open_args, worker_args=()):
    """Scheduler and worker up, task `t` opened with the escaper handler;
    returns (pid of the grandchild once it beats, its heartbeat file, the worker)."""
    pidfile = tmp_path / "grandchild.pid"
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    worker = procs.start("worker", "--handler", ESCAPER, "--name", "w1", *worker_args, name="w1")
    assert procs.run("open", "t", "--in", str(pidfile), *open_args).returncode == 0
    wait_until(pidfile.exists, timeout=30, message="the grandchild started")
    beat = Path(str(pidfile) + ".beat")
    wait_until(beat.exists, message="the grandchild beats")
    return int(pidfile.read_text()), beat, worker


def assert_gone(pid, beat):
    try:
        wait_until(lambda: not alive(pid), timeout=10, message="the grandchild killed")
    finally:
        if alive(pid):   # the test failed: leave nothing running
            os.kill(pid, signal.SIGKILL)
    last = beat.stat().st_mtime_ns
    time.sleep(0.3)   # six of its beats: none may come
    assert beat.stat().st_mtime_ns == last


def test_a_time_limit_kills_a_grandchild_that_left_the_session(store, procs, tmp_path):
    pid, beat, _ = grandchild_of_a_hung_task(store, procs, tmp_path, "--time-limit", "1s")
    wait_until(lambda: store.get_task("t").status == "failed", timeout=30, message="t failed")
    assert_gone(pid, beat)


def test_a_cancel_kills_a_grandchild_that_left_the_session(store, procs, tmp_path):
    pid, beat, _ = grandchild_of_a_hung_task(store, procs, tmp_path)
    assert alive(pid)
    assert procs.run("cancel", "t").returncode == 0
    wait_until(lambda: store.get_task("t").status == "failed", timeout=30, message="t cancelled")
    assert_gone(pid, beat)


def test_a_shutdown_kills_a_grandchild_that_left_the_session(store, procs, tmp_path):
    pid, beat, worker = grandchild_of_a_hung_task(store, procs, tmp_path,
                                                  worker_args=("--shutdown-grace", "500ms"))
    assert procs.stop(worker) == 0
    assert_gone(pid, beat)


def test_kill_9_of_the_worker_kills_a_grandchild_that_left_the_session(store, procs, tmp_path):
    pid, beat, worker = grandchild_of_a_hung_task(store, procs, tmp_path)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert_gone(pid, beat)


# --- defect 6: json logs ---------------------------------------------------------------------------

def json_lines(path):
    """Every line of the file, each parsed as one JSON object (fails on any other)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(parsed[-1], dict), line
    return parsed


def test_json_logs_are_one_object_a_line_whatever_the_handler_writes(store, procs):
    worker = procs.start("--log-format", "json", "-v", "worker", "--handler", CHATTY, "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    give(store, "w1", [("ok", "fine"), ("bad", "raise")])
    box = wait_until(lambda: all_done(store, "w1", ["ok", "bad"]), timeout=30, message="both ended")
    assert box["ok"]["status"] == "done" and box["bad"]["status"] == "failed"
    assert procs.stop(worker) == 0
    lines = json_lines(worker.log_path)
    handler = [(x.get("task"), x.get("stream"), x["message"]) for x in lines if "stream" in x]
    for task in ("ok", "bad"):
        assert (task, "stdout", f"partial line of {task}") in handler, "a line without newline stands alone"
        assert (task, "stderr", f"to stderr from {task}") in handler
        assert (task, "stderr", f"raw fd 2 from {task}") in handler
        assert any(t == task and s == "stderr" and f"UserWarning: careful with {task}" in m for t, s, m in handler)
    assert all(x.get("instance") == "w1" and x.get("role") == "worker" for x in lines if "stream" in x)
    assert any(x.get("task") == "bad" and x.get("status") == "failed" for x in lines)


def test_json_logs_carry_failures_warnings_and_tracebacks_in_one_line(procs, tmp_path):
    # a -v failure of the CLI: the traceback is a field, not 29 lines
    bad = procs.run("-v", "--log-format", "json", "worker", "--handler", "echo", "--name", "bad name!")
    assert bad.returncode == 2
    (failure,) = [json.loads(line) for line in bad.stderr.decode().splitlines()]
    assert "bad instance name" in failure["message"] and "Traceback" in failure["exception"]
    usage = procs.run("--log-format", "json", "worker", "--name", "w1")   # no --handler
    assert usage.returncode == 2
    (failure,) = [json.loads(line) for line in usage.stderr.decode().splitlines()]
    assert "Missing option '--handler'" in failure["message"] and failure["level"] == "error"
    # a Python warning and an uncaught exception in a process logging JSON
    script = ("from riaktq_cli.logs import setup_logging\n"
              "setup_logging(False, 'json')\n"
              "import warnings; warnings.warn('deprecated thing')\n"
              "raise ValueError('boom')\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path, timeout=30)
    assert ran.returncode == 1
    lines = [json.loads(line) for line in ran.stderr.decode().splitlines()]
    assert len(lines) == 2
    assert "deprecated thing" in lines[0]["message"] and lines[0]["level"] == "warning"
    assert "ValueError: boom" in lines[1]["message"] and "Traceback" in lines[1]["exception"]


# --- defect 12: who holds a name ------------------------------------------------------------------

def test_a_worker_killed_but_not_reaped_does_not_hold_its_name(store, procs):
    first = procs.start("worker", "--handler", "echo", "--name", "w1", name="first")
    wait_until(lambda: registered(store, "w1", first.pid), message="w1 up")
    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: not alive(first.pid), message="first dead")
    # the test process is its parent and does not reap it (no poll, no wait)...
    with open(f"/proc/{first.pid}/stat", "rb") as fh:
        assert fh.read().rsplit(b")", 1)[1].split()[0] == b"Z", "...so it is a zombie"
    second = procs.start("worker", "--handler", "echo", "--name", "w1", name="second")
    wait_until(lambda: registered(store, "w1", second.pid) or second.poll() is not None, timeout=30,
               message="the second worker up")
    assert second.poll() is None, "refused: " + Path(second.log_path).read_text()


def test_the_name_check_uses_the_instance_timeout_the_scheduler_published(store, procs):
    # The scheduler runs with a 60 s instance timeout; this config says 2 s.
    scheduler_settings.publish(store, "sched", 60_000_000, 0.1, "auto")
    store.put_record(INSTANCE, "w1", protocol.instance_record(
        name="w1", token="ab" * 8, handler="echo", tags=[], host="another-host", pid=1,
        started=now_us() - 10_000_000, heartbeat=now_us() - 5_000_000, status=protocol.IDLE,
        taken=0, epoch=0, queue=[], current=None, outbox=[]))
    worker = procs.start("worker", "--handler", "echo", "--name", "w1", name="w1")
    wait_until(lambda: worker.poll() is not None or registered(store, "w1", worker.pid), timeout=30,
               message="refused or up")
    assert worker.wait(timeout=10) == 2, "took the name of a worker alive by the scheduler's timeout"
    assert "held by a live worker" in Path(worker.log_path).read_text()
