"""The worker side of "nothing stuck, nothing run twice" (issue 8) and an
idle worker that sleeps (issue 9), with real processes on both stores.

Handlers run in a process of their own (worker/child.py): a time limit, a
shutdown grace or the death of the worker kills it; a crash of it becomes a
`crashed` result. Tests that give a worker tasks without a scheduler write
its inbox by hand, exactly as the scheduler does (protocol.inbox_entry).
"""

import os
import re
import signal
import time
from pathlib import Path

import pytest

from riaktq_cli.core import protocol
from riaktq_cli.core import task as transitions
from riaktq_cli.core.clock import now_us
from riaktq_cli.store.base import INBOX, INSTANCE
from tests.conftest import read_events, wait_until

HERE = Path(__file__).resolve().parent
CRASH = str(HERE / "handlers_for_tests" / "crash.py")
PRINTER = str(HERE / "handlers_for_tests" / "printer.py")
BAD_INIT = str(HERE / "handlers_for_tests" / "bad_init.py")
SPAWNER = str(HERE / "handlers_for_tests" / "spawner.py")


# --- helpers -------------------------------------------------------------------------

def log_text(proc):
    with open(proc.log_path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def runs(procs):
    """task id -> how many runs the workers' logs show (done/failed lines)."""
    counts = {}
    for proc in procs.procs:
        for m in re.finditer(r" (?:done|failed) (\S+) in ", log_text(proc)):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != b"Z":
                found.append(int(entry))
    return found


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record(store, name):
    return store.get_record(INSTANCE, name) or {}


def registered(store, name, pid=None):
    rec = record(store, name)
    return rec.get("status") in ("idle", "busy") and (pid is None or rec.get("pid") == pid)


def give(store, name, items, **inbox_fields):
    """Open tasks and put them in `name`'s inbox as the scheduler would:
    `items` is [(id, input)]; `inbox_fields` (epoch, token) are written in
    the same write, so the worker never sees the entries without them.
    Returns the assigned tasks."""
    for task_id, data in items:
        store.create_task(transitions.new_task(task_id, data.encode(), now=now_us()))
    written = store.update_tasks([i for i, _ in items], lambda t: transitions.assign(t, name))
    inbox = store.get_record(INBOX, name) or protocol.empty_inbox()
    for _old, new in written:
        inbox["seq"] += 1
        inbox["entries"].append(protocol.inbox_entry(inbox["seq"], new))
    inbox.update(inbox_fields)
    store.put_record(INBOX, name, inbox)
    return [new for _old, new in written]


def outbox(store, name):
    return {r["id"]: r for r in record(store, name).get("outbox", [])}


# --- time limits -------------------------------------------------------------------------

def test_time_limit_stops_a_one_hour_handler_and_the_next_task_runs(store, procs, tmp_path):
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    worker = procs.start("worker", "--handler", "sleep", "--name", "w1", "--time-limit", "2s", name="w1")
    assert procs.run("open", "hour", "--in", "3600").returncode == 0
    # its own limit wins over the worker's 2s
    assert procs.run("open", "own-limit", "--in", "2.5", "--time-limit", "20s").returncode == 0
    assert procs.run("open", "next", "--in", "0").returncode == 0
    wait_until(lambda: store.get_task("hour").status == "failed", timeout=30, message="hour failed")
    assert store.get_task("hour").out == b"time limit 2.0s exceeded"
    wait_until(lambda: store.get_task("next").status == "done", timeout=30, message="next done")
    wait_until(lambda: store.get_task("own-limit").status == "done", timeout=30, message="own-limit done")
    assert store.get_task("own-limit").out == b"2.5"
    assert worker.poll() is None, "the worker must go on after a time limit"
    sleepers = [pid for child in children(worker.pid) for pid in [child]]
    assert len(sleepers) == 1, "one fresh handler process, the killed one reaped"


def test_time_limit_kills_what_the_handler_started(store, procs, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    procs.start("worker", "--handler", SPAWNER, "--name", "w1", name="w1")
    assert procs.run("open", "spawn", "--in", str(pidfile), "--time-limit", "1s").returncode == 0
    wait_until(lambda: store.get_task("spawn").status == "failed", timeout=30, message="failed")
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not alive(grandchild), timeout=5, message="the handler's own child killed too")


def test_open_refuses_a_bad_time_limit_or_max_attempts(store, procs):
    for args in (["--time-limit", "0s"], ["--time-limit", "5"], ["--max-attempts", "0"],
                 ["--max-attempts", "x"]):
        result = procs.run("open", "t", "--in", "x", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.decode().strip().splitlines()) == 1
    assert procs.run("open", "t", "--in", "x", "--time-limit", "90s", "--max-attempts", "5").returncode == 0
    task = store.get_task("t")
    assert (task.time_limit, task.max_attempts) == (90.0, 5)


# --- shutdown --------------------------------------------------------------------------------

def test_sigterm_ends_a_hung_handler_within_the_grace(store, procs, tmp_path):
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    worker = procs.start("worker", "--handler", "sleep", "--name", "w1", "--shutdown-grace", "1s", name="w1")
    assert procs.run("open", "hung", "--in", "3600").returncode == 0
    wait_until(lambda: (record(store, "w1").get("current") or {}).get("id") == "hung", message="running")
    handler_pids = children(worker.pid)
    assert procs.stop(worker, signal.SIGTERM, timeout=20) == 0
    assert record(store, "w1")["status"] == "stopped"
    assert not any(alive(pid) for pid in handler_pids)
    wait_until(lambda: store.get_task("hung").status == "todo", timeout=10, message="back to todo")
    task = store.get_task("hung")
    assert task.lost == 0, "a run stopped by the shutdown grace is not an attempt"


def test_second_signal_stops_at_once(store, procs):
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    worker = procs.start("worker", "--handler", "sleep", "--name", "w1", name="w1")  # grace 30s
    assert procs.run("open", "hung", "--in", "3600").returncode == 0
    wait_until(lambda: (record(store, "w1").get("current") or {}).get("id") == "hung", message="running")
    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: "finishing up" in log_text(worker), timeout=10, message="first signal seen")
    assert procs.stop(worker, signal.SIGTERM, timeout=10) == 0
    assert record(store, "w1")["status"] == "stopped"
    wait_until(lambda: store.get_task("hung").status == "todo", timeout=10, message="back to todo")


def test_sigterm_hands_the_queue_back_instead_of_running_it(store, procs):
    worker = procs.start("worker", "--handler", "sleep", "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    give(store, "w1", [(f"q{i}", "1") for i in range(5)])
    wait_until(lambda: (record(store, "w1").get("current") or {}).get("id") == "q0", message="q0 running")
    assert procs.stop(worker, signal.SIGTERM, timeout=20) == 0
    box = outbox(store, "w1")
    assert box["q0"]["status"] == "done", "the task at hand finishes within the grace"
    assert [box[f"q{i}"]["status"] for i in range(1, 5)] == [protocol.RETURNED] * 4
    assert set(runs(procs)) == {"q0"}, "only the task at hand ran"


# --- one name, one instance -----------------------------------------------------------------------

def test_a_second_worker_under_a_live_name_refuses_to_start(store, procs):
    procs.start("worker", "--handler", "echo", "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    result = procs.run("worker", "--handler", "echo", "--name", "w1", timeout=30)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "held by a live worker" in lines[0], lines


def two_processes_under_one_name(store, procs):
    """Two live workers named w1, 40 tasks; returns (first, second) once all are done."""
    first = procs.start("worker", "--handler", "echo", "--name", "w1", name="first")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    # The second one misses the first (as if both started at the same moment):
    # the first is paused and the record the second reads says stopped.
    os.kill(first.pid, signal.SIGSTOP)
    try:
        store.put_record(INSTANCE, "w1", dict(record(store, "w1"), status="stopped"))
        second = procs.start("worker", "--handler", "echo", "--name", "w1", name="second")
        wait_until(lambda: registered(store, "w1", second.pid), message="second registered")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    ids = [f"t{i}" for i in range(40)]
    for task_id in ids:
        assert procs.run("open", task_id, "--in", task_id).returncode == 0
    wait_until(lambda: all(t.status == "done" for t in store.get_tasks(ids).values()), timeout=60,
               message="all done")
    return first, second


def test_two_processes_sharing_a_name_the_later_one_leaves(store, procs):
    first, second = two_processes_under_one_name(store, procs)
    wait_until(lambda: second.poll() is not None, timeout=30, message="the second leaves")
    assert first.poll() is None and second.returncode == 2, "the one that started later leaves"
    assert log_text(second).count("runs under this name; leaving") == 1


def test_two_processes_sharing_a_name_never_run_a_task_twice(store, procs):
    two_processes_under_one_name(store, procs)
    assert set(runs(procs).values()) == {1}, "a task ran twice"


def test_a_process_that_leaves_its_name_hands_over_what_it_finished(store, procs):
    """The later of two processes under one name ran five tasks whose
    results the scheduler never saw (the other's record overwrote its own):
    on leaving it writes them to a handover record, the scheduler commits
    them from there and deletes it, and none of the five runs again."""
    first = procs.start("worker", "--handler", "echo", "--name", "w1", name="first")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    token1 = record(store, "w1")["token"]
    os.kill(first.pid, signal.SIGSTOP)
    try:
        store.put_record(INSTANCE, "w1", dict(record(store, "w1"), status="stopped"))
        second = procs.start("worker", "--handler", "echo", "--name", "w1", name="second")
        wait_until(lambda: registered(store, "w1", second.pid), message="second registered")
        ids = [f"h{i}" for i in range(5)]
        give(store, "w1", [(i, i) for i in ids], token=record(store, "w1")["token"])
        wait_until(lambda: set(ids) <= set(outbox(store, "w1")), message="the second ran them")
        os.kill(second.pid, signal.SIGSTOP)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    try:
        # the first writes the record again, and the scheduler addresses the inbox to it
        wait_until(lambda: record(store, "w1").get("token") == token1, message="the first's record")
        store.put_record(INBOX, "w1", dict(store.get_record(INBOX, "w1"), token=token1, entries=[]))
    finally:
        os.kill(second.pid, signal.SIGCONT)
    wait_until(lambda: second.poll() is not None, timeout=30, message="the second leaves")
    assert second.returncode == 2
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    wait_until(lambda: all(t.status == "done" for t in store.get_tasks(ids).values()), timeout=30,
               message="all done")
    assert runs(procs) == {i: 1 for i in ids}, "a task ran twice"
    wait_until(lambda: not protocol.split_handovers(store.list_records(INSTANCE))[1], timeout=30,
               message="the handover is deleted once committed")
    assert first.poll() is None


def test_count_names_carry_the_host_and_durations_pass_as_written(store, procs):
    from riaktq_cli.worker.supervisor import short_host
    procs.start("worker", "--handler", "echo", "--count", "2", "--poll", "0.05ms", "--heartbeat", "0.5s",
                name="sup")
    names = {f"echo-{short_host()}-1", f"echo-{short_host()}-2"}
    wait_until(lambda: {n for n in names if registered(store, n)} == names, timeout=30, message="both up")


# --- crashes and a dead runner ------------------------------------------------------------------------

@pytest.mark.parametrize("how,why", [("exit 5", "handler process died (exit code 5)"),
                                     ("segv", "handler process died (killed by SIGSEGV)")])
def test_a_crash_of_the_handler_process_is_a_crashed_result(store, procs, how, why):
    worker = procs.start("worker", "--handler", CRASH, "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    give(store, "w1", [("boom", how), ("after", "fine")])
    wait_until(lambda: {"boom", "after"} <= set(outbox(store, "w1")), timeout=30, message="two results")
    box = outbox(store, "w1")
    assert (box["boom"]["status"], protocol.result_output(box["boom"])) == (protocol.CRASHED, why.encode())
    assert (box["after"]["status"], protocol.result_output(box["after"])) == ("done", b"fine")
    assert box["boom"]["run"] == 1
    assert worker.poll() is None


def test_a_crashing_task_ends_failed_after_3_attempts_while_others_finish(store, procs, tmp_path):
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="scheduler")
    procs.start("worker", "--handler", CRASH, "--count", "2", "--prefix", "c", name="workers")
    assert procs.run("open", "boom", "--in", "exit 5").returncode == 0
    for i in range(5):
        assert procs.run("open", f"ok-{i}", "--in", f"ok {i}").returncode == 0
    wait_until(lambda: store.get_task("boom").status == "failed", timeout=60, message="boom failed")
    boom = store.get_task("boom")
    assert boom.out.startswith(b"lost 3 times; last on instance c-")
    assert b"handler process died (exit code 5)" in boom.out
    wait_until(lambda: all(store.get_task(f"ok-{i}").status == "done" for i in range(5)), timeout=30,
               message="the others done")
    assert [e["transition"] for e in read_events(events) if e["id"] == "boom"].count("assign") == 3


def test_a_dead_runner_makes_the_worker_exit_and_its_tasks_finish_elsewhere(store, procs, monkeypatch):
    import threading

    from riaktq_cli.worker.handler import HandlerSpec
    from riaktq_cli.worker import Worker
    from riaktq_cli.worker.runner import Runner, RunnerFailed

    def broken(self):
        raise RuntimeError("runner bug")
    monkeypatch.setattr(Runner, "_receive", broken)
    procs.start("scheduler", "--interval", "100ms", "--prefetch", "3", name="scheduler")
    worker = Worker(store, "doomed", HandlerSpec("sleep"), heartbeat=0.2, poll=0.05, instance_timeout=2.0)
    failure = []
    thread = threading.Thread(target=lambda: failure.append(_run_catching(worker)), daemon=True)
    thread.start()
    wait_until(lambda: registered(store, "doomed"), message="doomed up")
    ids = [f"j{i}" for i in range(3)]
    for task_id in ids:
        assert procs.run("open", task_id, "--in", "0.2").returncode == 0
    thread.join(30)
    assert not thread.is_alive() and isinstance(failure[0], RunnerFailed), failure
    assert "task runner died" in str(failure[0])
    assert not alive(worker.runner.child.pid) if worker.runner.child else True
    beat = record(store, "doomed")["heartbeat"]
    procs.start("worker", "--handler", "sleep", "--name", "rescuer", name="rescuer")
    wait_until(lambda: all(t.status == "done" for t in store.get_tasks(ids).values()), timeout=60,
               message="done elsewhere")
    assert {t.assignee for t in store.get_tasks(ids).values()} == {"rescuer"}
    assert record(store, "doomed")["heartbeat"] == beat, "a dead worker must not heart-beat"



def test_a_round_of_work_costs_one_record_write(store):
    """Taking entries changes the record but waits for nothing: it goes out
    with the results, so a batch costs one write (on Riak a PUT for the
    worker and a GET for the scheduler), not one more when the entries come."""
    import threading

    from riaktq_cli.worker.handler import HandlerSpec
    from riaktq_cli.worker import Worker

    class Counting:
        def __init__(self, inner):
            self.inner, self.writes = inner, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def put_record(self, kind, name, doc):
            self.writes += kind == INSTANCE
            return self.inner.put_record(kind, name, doc)

    counting = Counting(store)
    worker = Worker(counting, "w1", HandlerSpec("echo"), heartbeat=60.0, poll=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: registered(store, "w1"), message="w1 up")
        before = counting.writes
        give(store, "w1", [(f"r{i}", f"v{i}") for i in range(8)])
        wait_until(lambda: len(outbox(store, "w1")) == 8, message="8 results written")
        assert counting.writes - before == 1
    finally:
        stop.set()
        thread.join(30)

def _run_catching(worker):
    try:
        worker.run()
    except Exception as exc:  # noqa: BLE001 -- the test looks at it
        return exc
    return None


def test_log_writes_that_fail_do_not_raise(monkeypatch):
    from riaktq_cli.runtime import logs

    class Gone:
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(logs, "_stream", Gone())
    logs.info_line("nobody reads this")


# --- parent death ------------------------------------------------------------------------------------

def test_kill_9_of_a_worker_leaves_no_handler_process(store, procs):
    worker = procs.start("worker", "--handler", "sleep", "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    handler_pids = wait_until(lambda: children(worker.pid), message="handler process up")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    wait_until(lambda: not any(alive(p) for p in handler_pids), timeout=10, message="handler process gone")


def test_kill_9_of_a_supervisor_leaves_no_child_and_a_restart_reuses_the_names(store, procs):
    args = ("worker", "--handler", "sleep", "--count", "2", "--prefix", "k", "--shutdown-grace", "1s")
    sup = procs.start(*args, name="sup")
    wait_until(lambda: registered(store, "k-1") and registered(store, "k-2"), timeout=30, message="both up")
    workers = children(sup.pid)
    assert len(workers) == 2
    handlers = [h for w in workers for h in children(w)]
    assert len(handlers) == 2
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    wait_until(lambda: not any(alive(p) for p in workers + handlers), timeout=20, message="all children gone")
    procs.start(*args, name="sup2")
    wait_until(lambda: all(registered(store, n) and record(store, n)["pid"] not in workers
                           for n in ("k-1", "k-2")), timeout=30, message="restarted under the same names")
    assert set(store.list_records(INSTANCE)) == {"k-1", "k-2"}


# --- restarts keep what the predecessor had ---------------------------------------------------------------

def test_a_restarted_worker_keeps_its_predecessors_outbox_and_returns_its_queue(store, procs):
    first = procs.start("worker", "--handler", CRASH, "--name", "w1", name="first")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    give(store, "w1", [("fast-1", "a"), ("fast-2", "b"), ("slow", "sleep 3600"), ("queued", "c")])
    wait_until(lambda: (record(store, "w1").get("current") or {}).get("id") == "slow"
               and {"fast-1", "fast-2"} <= set(outbox(store, "w1")), message="two done, slow at hand")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = procs.start("worker", "--handler", CRASH, "--name", "w1", name="second")
    wait_until(lambda: registered(store, "w1", second.pid), timeout=30, message="restarted")
    box = outbox(store, "w1")
    assert box["fast-1"]["status"] == box["fast-2"]["status"] == "done", "the predecessor's outbox was kept"
    assert box["queued"]["status"] == protocol.RETURNED
    assert "slow" not in box, "the task at hand of a dead worker is left to the scheduler (a lost run)"
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    wait_until(lambda: store.get_task("fast-1").status == store.get_task("fast-2").status == "done",
               timeout=30, message="committed")
    assert store.get_task("fast-1").out == b"a"


# --- fencing ------------------------------------------------------------------------------------------------

def test_inboxes_of_an_older_epoch_or_another_token_are_not_taken(store, procs):
    procs.start("worker", "--handler", "echo", "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    token = record(store, "w1")["token"]
    give(store, "w1", [("a", "a")])
    inbox = store.get_record(INBOX, "w1")
    store.put_record(INBOX, "w1", dict(inbox, epoch=5, token=token))
    wait_until(lambda: "a" in outbox(store, "w1") and record(store, "w1")["epoch"] == 5, message="a run")
    give(store, "w1", [("old-epoch", "x")], epoch=4, token=token)
    give(store, "w1", [("other-token", "y")], epoch=5, token="f" * 16)
    wait_until(lambda: record(store, "w1")["heartbeat"] > now_us() + 0 - 300_000, message="heartbeat")
    time.sleep(0.5)  # several polls: nothing may be taken
    assert set(outbox(store, "w1")) == {"a"}
    store.put_record(INBOX, "w1", dict(store.get_record(INBOX, "w1"), epoch=6, token=token))
    wait_until(lambda: {"old-epoch", "other-token"} <= set(outbox(store, "w1")), message="taken once addressed")


# --- the handler process ---------------------------------------------------------------------------------------

def test_a_handler_that_prints_to_stdout_does_not_break_the_channel(store, procs):
    procs.start("worker", "--handler", PRINTER, "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")
    give(store, "w1", [("p", "shout")])
    wait_until(lambda: "p" in outbox(store, "w1"), message="result")
    assert protocol.result_output(outbox(store, "w1")["p"]) == b"SHOUT"


def test_a_bad_handler_is_one_line_at_start(store, procs):
    result = procs.run("worker", "--handler", BAD_INIT, "--name", "w1")
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "init failed: RuntimeError: no GPU here" in lines[0], lines
    result = procs.run("worker", "--handler", BAD_INIT, "--count", "2")
    assert result.returncode == 2 and "no GPU here" in result.stderr.decode()
    assert store.get_record(INSTANCE, "w1") is None


# --- idle means idle ---------------------------------------------------------------------------------------------

def test_an_idle_worker_sleeps_before_and_after_work(store, procs):
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    worker = procs.start("worker", "--handler", "echo", "--name", "w1", name="w1")
    wait_until(lambda: registered(store, "w1"), message="w1 up")

    def idle_share():
        pids = [worker.pid] + children(worker.pid)
        before = sum(cpu_seconds(p) for p in pids)
        started = time.monotonic()
        time.sleep(3)
        return (sum(cpu_seconds(p) for p in pids) - before) / (time.monotonic() - started)
    assert idle_share() < 0.05
    assert procs.run("open", "one", "--in", "x", "--wait", "--timeout", "30s").returncode == 0
    wait_until(lambda: record(store, "w1").get("status") == "idle" and not record(store, "w1")["outbox"],
               message="settled")
    share = idle_share()
    assert share < 0.05, f"an idle worker used {share:.0%} of a core after running a task"
