"""Observer queries and the operator's view: report, observe, stats, requeue.

Task states are built directly through the store (`new_task`, `assign`,
`close` applied with `update_tasks`) with `cat` set to chosen ages. Every
test takes the store from the `store` fixture and the CLI's config file
from `config_file`, so both can be parametrized over SQLite and Riak.
"""

import csv
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from riaktq_cli import clock, task as T
from riaktq_cli.cli import cli
from riaktq_cli.clock import seconds_to_us
from riaktq_cli.config import ObserverQuery
from riaktq_cli.errors import RiaktqError, StoreUnavailable
from riaktq_cli.daily import DAY_US, DailySchedule, Observer
from riaktq_cli.store.base import INSTANCE
from tests.terminal import read_pty, spawn_in_pty

_SCRIPT = Path(sys.executable).parent / "riaktq"
RIAKTQ = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "riaktq_cli"]

S, M, H, D = 1, 60, 3600, 86400


# `store` and `config_file` come from conftest.py, parametrized over both
# stores; nothing below depends on which one it is (except the SQLite query
# plans, skipped on Riak).

@pytest.fixture(autouse=True)
def _fresh_log_handlers():
    """Each CLI run may attach a handler to its own (captured) stderr; drop
    it afterwards so a later test never logs into a closed stream."""
    logger = logging.getLogger("riaktq")
    saved = list(logger.handlers)
    yield
    logger.handlers[:] = saved


# --- helpers -------------------------------------------------------------------

def with_queries(config_file, queries, name="queries.toml"):
    """A copy of `config_file` with [[observer.query]] tables appended."""
    text = config_file.read_text()
    for key, status, age in queries:
        text += f'\n[[observer.query]]\nkey = "{key}"\n'
        if status:
            text += f'status = "{status}"\n'
        if age:
            text += f'age = "{age}"\n'
    path = config_file.with_name(name)
    path.write_text(text)
    return path


def invoke(config_file, *args):
    result = CliRunner().invoke(cli, ["--config", str(config_file), *args])
    if result.exception and not isinstance(result.exception, (SystemExit, RiaktqError)):
        raise result.exception
    return result


def put(store, task_id, status, cat, *, sat=None, laf=None, out=b"result", retry=0,
        data=b"input", assignee="w1"):
    """Store a task in `status`, created at `cat`, through the transitions."""
    store.create_task(T.new_task(task_id, data, retry=retry, now=cat))
    if status == T.TODO:
        return
    store.update_tasks([task_id], lambda t: T.assign(t, assignee))
    if status in T.FINISHED:
        sat = cat + 1000 if sat is None else sat
        laf = 500 if laf is None else laf
        # closed when its run ended: the stats count a task from when it closed
        store.update_tasks([task_id], lambda t: T.close(t, assignee, status, out, sat, laf, now=sat + laf)[0])


# id, status, age in seconds
POPULATION = [
    ("todo-10s", T.TODO, 10 * S), ("todo-2h", T.TODO, 2 * H), ("todo-3d", T.TODO, 3 * D),
    ("nextup-90m", T.NEXTUP, 90 * M),
    ("done-30s", T.DONE, 30 * S), ("done-2h", T.DONE, 2 * H), ("done-2d", T.DONE, 2 * D),
    ("failed-5m", T.FAILED, 5 * M), ("failed-3h", T.FAILED, 3 * H), ("failed-5d", T.FAILED, 5 * D),
]


@pytest.fixture
def population(store):
    """The tasks of POPULATION, aged relative to now; returns that now."""
    now = clock.now_us()
    for task_id, status, age in POPULATION:
        put(store, task_id, status, now - seconds_to_us(age), out=f"out of {task_id}".encode())
    return now


def expected(status=None, age=None, population=POPULATION, elapsed=0):
    """Ids with `status` created at least `age` ago, oldest first."""
    rows = [(a + elapsed, i) for i, st, a in population
            if (status is None or st == status) and (age is None or a + elapsed >= age)]
    return [i for _a, i in sorted(rows, key=lambda r: (-r[0], r[1]))]  # oldest first, then id


AGES = {None: None, "1m": M, "1h": H, "1d": D, "7d": 7 * D}


# --- report ----------------------------------------------------------------------

def test_report_ids_for_every_status_and_age(population, config_file):
    for status in (None,) + T.STATUSES:
        for age_text, age in AGES.items():
            args = ["report"] + (["--status", status] if status else []) + \
                   (["--age", age_text] if age_text else [])
            result = invoke(config_file, *args)
            assert result.exit_code == 0, result.output
            assert result.stdout.splitlines() == expected(status, age), args
            result = invoke(config_file, *args, "--format", "json", "--key", "q")
            assert json.loads(result.stdout) == {"key": "q", "ids": expected(status, age)}, args


def test_report_table_and_csv(population, config_file):
    result = invoke(config_file, "report", "--status", "failed", "--age", "1h", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["failed-5d", "failed-3h"]
    assert {r["status"] for r in rows} == {"failed"}
    assert rows[0]["out"] == "out of failed-5d"
    assert int(rows[1]["cat"]) == population - seconds_to_us(3 * H)

    result = invoke(config_file, "report", "--age", "1d", "--format", "table")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "STATUS"]
    assert set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == expected(age=D)
    assert [line.split()[1] for line in lines[2:]] == ["failed", "todo", "done"]


def test_report_age_is_at_least_measured_against_cat(store, config_file, monkeypatch):
    now = clock.now_us()
    monkeypatch.setattr(clock, "now_us", lambda: now)
    put(store, "exactly-1h", T.DONE, now - seconds_to_us(H))
    put(store, "1h-less-1us", T.DONE, now - seconds_to_us(H) + 1)
    put(store, "older", T.TODO, now - seconds_to_us(H) - 1)
    assert invoke(config_file, "report", "--age", "1h").stdout.split() == ["older", "exactly-1h"]
    assert invoke(config_file, "report", "--age", "1h", "--status", "done").stdout.split() == ["exactly-1h"]
    assert invoke(config_file, "report", "--status", "done").stdout.split() == ["exactly-1h", "1h-less-1us"]


def test_report_limit_and_empty_results(population, config_file):
    assert invoke(config_file, "report", "--limit", "2").stdout.split() == expected()[:2]
    for fmt in ("ids", "csv", "table", "json"):
        result = invoke(config_file, "report", "--status", "done", "--age", "7d", "--format", fmt)
        assert result.exit_code == 0
        if fmt == "ids":
            assert result.stdout == ""  # cron mails nothing
        elif fmt == "csv":
            assert result.stdout.splitlines() == ["id,status,priority,retry,assignee,tags,cat,sat,laf,out"]
        elif fmt == "json":
            assert json.loads(result.stdout) == {"key": None, "ids": []}
        else:
            assert result.stdout == "" and "no matching tasks" in result.stderr


def test_report_pages_through_many_tasks(store, config_file):
    """More ids than one index page (1000) and one detail chunk (500)."""
    now = clock.now_us()
    tasks = []
    for n in range(1100):
        task = T.new_task(f"many-{n:05d}", b"x", now=now - seconds_to_us(D) + n)
        task = T.assign(task, "w1")
        tasks.append(T.close(task, "w1", T.DONE, b"ok", now - 1000, 10)[0])
    for start in range(0, len(tasks), 500):
        assert not any(store.create_tasks(tasks[start:start + 500]))
    put(store, "young", T.DONE, now)
    ids = [t.id for t in tasks]
    assert invoke(config_file, "report", "--status", "done", "--age", "1h").stdout.split() == ids
    result = invoke(config_file, "report", "--age", "1h", "--format", "json")
    assert json.loads(result.stdout)["ids"] == ids
    rows = list(csv.DictReader(io.StringIO(invoke(config_file, "report", "--age", "1h", "--format", "csv").stdout)))
    assert [r["id"] for r in rows] == ids
    table = invoke(config_file, "report", "--age", "1h", "--format", "table").stdout.splitlines()
    assert [line.split()[0] for line in table[2:]] == ids
    assert len({line.index("done") for line in table[2:]}) == 1  # pages line up
    assert invoke(config_file, "report", "--status", "done", "--limit", "1050").stdout.split() == ids[:1050]


def test_report_all_queries(population, config_file):
    cfg = with_queries(config_file, [("old-failed", "failed", "1h"), ("stale-todo", "todo", "1d"),
                                     ("none", "done", "30d"), ("everything", None, None)])
    result = invoke(cfg, "report", "--all-queries", "--format", "json")
    assert result.exit_code == 0
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert objects == [
        {"key": "old-failed", "ids": expected("failed", H)},
        {"key": "stale-todo", "ids": expected("todo", D)},
        {"key": "none", "ids": []},
        {"key": "everything", "ids": expected(age=0)},
    ]
    lines = invoke(cfg, "report", "--all-queries").stdout.splitlines()
    assert lines[:3] == ["old-failed\tfailed-5d", "old-failed\tfailed-3h", "stale-todo\ttodo-3d"]
    assert len(lines) == 3 + len(POPULATION)
    rows = list(csv.DictReader(io.StringIO(invoke(cfg, "report", "--all-queries", "--format", "csv").stdout)))
    assert [(r["key"], r["id"]) for r in rows][:3] == [("old-failed", "failed-5d"), ("old-failed", "failed-3h"),
                                                      ("stale-todo", "todo-3d")]


@pytest.mark.parametrize("args", [
    ["--status", "bogus"], ["--age", "5"], ["--age", "-1d"], ["--limit", "-1"], ["--format", "xml"],
    ["--all-queries"],  # no queries in the config file
    ["--all-queries", "--status", "done"], ["unexpected-argument"],
])
def test_report_bad_arguments_exit_2(config_file, args):
    result = invoke(config_file, "report", *args)
    assert result.exit_code == 2, (args, result.output)
    assert result.stdout == ""


def test_report_unreachable_store_exits_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'[sqlite]\npath = "{tmp_path}/no/such/dir/t.db"\n')
    proc = subprocess.run(RIAKTQ + ["--config", str(cfg), "report", "--status", "done"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "riaktq: error:" in proc.stderr


def test_report_unreachable_riak_exits_2(tmp_path):
    pytest.importorskip("riaktq_cli.store.riak")
    cfg = tmp_path / "riak.toml"
    cfg.write_text('[store]\nbackend = "riak"\n[riak]\nnodes = ["http://127.0.0.1:9"]\ntimeout = "1s"\n')
    proc = subprocess.run(RIAKTQ + ["--config", str(cfg), "report", "--status", "done"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("riaktq: error: ") and "Traceback" not in proc.stderr


# --- pseudo-terminal helpers -------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def test_report_defaults_to_a_table_on_a_terminal(population, config_file):
    proc, master = spawn_in_pty(RIAKTQ + ["--config", str(config_file), "report", "--status", "done"])
    try:
        screen = ANSI.sub("", read_pty(master, 30))
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
    assert "ID" in screen and "CREATED (UTC)" in screen
    assert all(task_id in screen for task_id in expected("done"))


# --- observe -------------------------------------------------------------------

def test_daily_schedule_once_a_day_after_the_time():
    day0 = 20_000 * DAY_US
    six = seconds_to_us(6 * H)
    schedule = DailySchedule("06:00:00", ["a", "b"])
    assert schedule.due(day0 + six - 1) == (20_000, [])
    assert schedule.due(day0 + six) == (20_000, ["a", "b"])
    schedule.mark("a", 20_000)
    assert schedule.due(day0 + six + seconds_to_us(M)) == (20_000, ["b"])  # b failed: due again
    schedule.mark("b", 20_000)
    assert schedule.due(day0 + DAY_US - 1)[1] == []
    assert schedule.due(day0 + DAY_US + seconds_to_us(1))[1] == []  # after midnight, before 06:00
    assert schedule.due(day0 + DAY_US + six + 1) == (20_001, ["a", "b"])
    assert DailySchedule("00:00:00", ["a"]).due(day0) == (20_000, ["a"])


def _time_just_passed(now):
    into_day = (now % DAY_US) // 1_000_000
    secs = max(0, into_day - 2)
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


OBSERVED = [ObserverQuery("old-failed", "failed", H), ObserverQuery("any-todo", "todo", 0.0),
            ObserverQuery("nothing", "done", 30 * D)]


def test_observer_emits_once_a_day_and_again_after_midnight(store, population):
    clock_now = [population]
    out = io.StringIO()
    observer = Observer(store, OBSERVED, _time_just_passed(population), out, clock_fn=lambda: clock_now[0])

    assert observer.check() == [("old-failed", 2), ("any-todo", 3), ("nothing", 0)]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"key": "old-failed", "ids": expected("failed", H), "at": population},
                     {"key": "any-todo", "ids": expected("todo", 0), "at": population}]

    for step in (M, H):  # later checks the same day: nothing again
        clock_now[0] = population + seconds_to_us(step)
        assert observer.check() == []
    assert len(out.getvalue().splitlines()) == 2

    # Simulated clock: the next UTC day, just after the configured time.
    next_day = (population // DAY_US + 1) * DAY_US + (population % DAY_US)
    clock_now[0] = next_day
    elapsed = (next_day - population) / 1e6
    ran = observer.check()
    assert [key for key, _ in ran] == ["old-failed", "any-todo", "nothing"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()[2:]]
    assert lines == [
        {"key": "old-failed", "ids": expected("failed", H, elapsed=elapsed), "at": next_day},
        {"key": "any-todo", "ids": expected("todo", 0, elapsed=elapsed), "at": next_day}]
    clock_now[0] = next_day + seconds_to_us(M)
    assert observer.check() == []


class FlakyStore:
    """A store whose `iter_ids` breaks halfway through its first `fail` calls."""

    def __init__(self, store, fail):
        self._store = store
        self.fail = fail

    def __getattr__(self, name):
        return getattr(self._store, name)

    def iter_ids(self, *args, **kwargs):
        if self.fail > 0:
            self.fail -= 1
            return self._broken(self._store.iter_ids(*args, **kwargs))
        return self._store.iter_ids(*args, **kwargs)

    @staticmethod
    def _broken(ids):
        yield next(ids)
        raise StoreUnavailable("connection refused")


def test_observer_retries_a_failed_query_and_keeps_running(store, population):
    flaky = FlakyStore(store, fail=1)
    out = io.StringIO()
    logger = logging.getLogger("riaktq")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        observer = Observer(flaky, OBSERVED, "00:00:00", out, clock_fn=lambda: population)
        assert observer.check() == [("any-todo", 3), ("nothing", 0)]  # old-failed broke halfway
        assert [json.loads(line)["key"] for line in out.getvalue().splitlines()] == ["any-todo"]
        assert any("old-failed failed" in r.getMessage() for r in records)
        assert observer.check() == [("old-failed", 2)]  # retried at the next check

        # The daemon loop survives failing checks (on a queue whose observer
        # memory is wiped, so that every query is due again).
        store.delete_record("scheduler", "observer")
        flaky.fail = 10**6
        looping = Observer(flaky, OBSERVED, "00:00:00", io.StringIO(), clock_fn=lambda: population)
        stop = threading.Event()
        thread = threading.Thread(target=looping.run, args=(0.01, stop))
        thread.start()
        time.sleep(0.2)
        assert thread.is_alive()
        flaky.fail = 0
        deadline = time.monotonic() + 10
        while len(looping.schedule.last_day) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
        assert len(looping.out.getvalue().splitlines()) == 2
    finally:
        logger.removeHandler(handler)


def test_observe_daemon_emits_each_query_once(population, config_file, tmp_path):
    cfg = with_queries(config_file, [("old-failed", "failed", "1h"), ("any-todo", "todo", None),
                                     ("nothing", "done", "30d")])
    events = tmp_path / "observed.jsonl"
    proc = subprocess.Popen(RIAKTQ + ["--config", str(cfg), "observe", "--time", _time_just_passed(clock.now_us()),
                                      "--interval", "100ms", "--events", str(events)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (events.exists() and len(events.read_text().splitlines()) >= 2):
            time.sleep(0.05)
        time.sleep(0.6)  # several more checks: nothing new
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(r["key"], r["ids"]) for r in lines] == [("old-failed", expected("failed", H)),
                                                     ("any-todo", expected("todo", 0))]
    assert all(isinstance(r["at"], int) for r in lines)


def test_observe_needs_queries(config_file):
    result = invoke(config_file, "observe")
    assert result.exit_code == 2 and "observer.query" in result.output
    assert invoke(config_file, "observe", "--time", "25:00:00").exit_code == 2


# --- requeue ---------------------------------------------------------------------

def test_requeue_failed_puts_exactly_those_back(store, population, config_file):
    before = {task_id: store.get_task(task_id) for task_id, _, _ in POPULATION}
    failed = expected("failed")

    dry = invoke(config_file, "requeue", "--status", "failed", "--dry-run")
    assert dry.exit_code == 0
    assert dry.stdout.split() == failed
    assert "would requeue 3 task(s)" in dry.stderr
    assert {i: store.get_task(i) for i in before} == before

    result = invoke(config_file, "requeue", "--status", "failed", "--retry", "2")
    assert result.exit_code == 0, result.output
    assert "requeued 3 task(s)" in result.stderr
    for task_id, old in before.items():
        new = store.get_task(task_id)
        if task_id in failed:
            assert (new.status, new.retry, new.assignee, new.rev) == (T.TODO, 2, None, old.rev + 1)
            assert new.out == old.out == f"out of {task_id}".encode()  # kept until it runs again
            assert (new.priority, new.cat, new.in_) == (old.priority, old.cat, old.in_)
        else:
            assert new == old
    assert invoke(config_file, "report", "--status", "failed").stdout == ""


def test_requeue_with_age_and_ids(store, population, config_file):
    result = invoke(config_file, "requeue", "--status", "failed", "--age", "1d")
    assert result.exit_code == 0
    assert [t for t in expected("failed") if store.get_task(t).status == T.TODO] == ["failed-5d"]

    result = invoke(config_file, "requeue", "done-2h", "todo-10s", "no-such-task", "done-2h")
    assert result.exit_code == 1
    assert "task 'todo-10s' is todo" in result.stderr and "no task 'no-such-task'" in result.stderr
    assert store.get_task("done-2h").status == T.TODO
    assert store.get_task("todo-10s").rev == 1


@pytest.mark.parametrize("args", [[], ["a", "--status", "failed"], ["a", "--age", "1d"],
                                  ["--status", "todo"], ["--status", "failed", "--retry", "-1"]])
def test_requeue_bad_arguments(config_file, args):
    assert invoke(config_file, "requeue", *args).exit_code == 2


def test_requeued_tasks_run_again(store, config_file):
    from riaktq_cli.events import EventSink
    from riaktq_cli.handler import load_handler
    from riaktq_cli.scheduler import Scheduler
    from riaktq_cli.worker import Worker

    now = clock.now_us()
    for n in range(4):
        put(store, f"bad-{n}", T.FAILED, now - seconds_to_us(M) + n, out=b"boom", data=b"again %d" % n)
    put(store, "good", T.DONE, now - seconds_to_us(M), out=b"fine")
    good = store.get_task("good")
    assert invoke(config_file, "requeue", "--status", "failed").exit_code == 0

    scheduler = Scheduler(store, instance_timeout=30.0, prefetch=2, events=EventSink(None))
    worker = Worker(store, "echo-1", load_handler("echo"), heartbeat=0.2, poll=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            scheduler.iteration()
            if all(store.get_task(f"bad-{n}").status == T.DONE for n in range(4)):
                break
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    for n in range(4):
        task = store.get_task(f"bad-{n}")
        assert (task.status, task.out, task.assignee) == (T.DONE, b"again %d" % n, "echo-1")
        assert task.sat >= now
    assert store.get_task("good") == good


# --- stats -------------------------------------------------------------------------

@pytest.fixture
def busy_queue(store, monkeypatch):
    """A queue at a fixed moment: finished tasks at known times, one instance."""
    now = clock.now_us()
    monkeypatch.setattr(clock, "now_us", lambda: now)
    monkeypatch.setattr("riaktq_cli.instances.now_us", lambda: now)
    ago = lambda seconds: now - seconds_to_us(seconds)  # noqa: E731
    put(store, "done-30s", T.DONE, ago(H), sat=ago(40), laf=seconds_to_us(10))
    put(store, "done-10m", T.DONE, ago(H), sat=ago(10 * M), laf=0)
    put(store, "failed-20m", T.FAILED, ago(H), sat=ago(21 * M), laf=seconds_to_us(M))
    put(store, "failed-2h", T.FAILED, ago(3 * H), sat=ago(2 * H), laf=0)
    put(store, "done-exactly-1m", T.DONE, ago(H), sat=ago(M), laf=0)
    put(store, "todo-5m", T.TODO, ago(5 * M))
    put(store, "todo-10s", T.TODO, ago(10))
    put(store, "running", T.NEXTUP, ago(M), assignee="w1")
    store.put_record(INSTANCE, "w1", {
        "name": "w1", "tags": ["gpu"], "status": "busy", "heartbeat": ago(1), "taken": 1,
        "queue": [], "current": {"id": "running", "seq": 1, "since": ago(5)}, "outbox": []})
    return now


def test_stats_json_figures(busy_queue, config_file):
    result = invoke(config_file, "stats", "--format", "json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["at"] == busy_queue
    assert figures["counts"] == {"todo": 2, "nextup": 1, "done": 3, "failed": 2}
    assert figures["total"] == 8
    assert figures["oldest_todo_age"] == 300.0
    assert figures["closed_last_minute"] == 2   # done-30s, and done-exactly-1m (>=)
    assert figures["closed_last_hour"] == 4
    assert figures["failed_last_hour"] == 1
    [w1] = figures["instances"]
    assert (w1["name"], w1["tags"], w1["status"], w1["queue"], w1["outbox"]) == ("w1", ["gpu"], "busy", 1, 0)
    assert (w1["heartbeat_age"], w1["current"], w1["current_for"]) == (1.0, "running", 5.0)


def test_stats_table(busy_queue, config_file):
    result = invoke(config_file, "stats")
    assert result.exit_code == 0
    text = result.stdout
    assert re.search(r"^done\s+3$", text, re.M) and re.search(r"^total\s+8$", text, re.M)
    assert re.search(r"^oldest todo\s+5m 0s$", text, re.M)
    assert re.search(r"^closed last hour\s+4$", text, re.M)
    assert re.search(r"^w1\s+gpu\s+busy\s+1\s+0\s+1\.0s\s+running \(5\.0s\)$", text, re.M)
    assert invoke(config_file, "stats", "--watch", "--format", "json").exit_code == 2


def test_count_finished_since(store):
    now = clock.now_us()
    put(store, "a", T.DONE, now - 100, sat=now - 50, laf=50)          # ends at now
    put(store, "b", T.FAILED, now - 100, sat=now - 50, laf=49)        # ends 1 µs before
    put(store, "c", T.FAILED, now - 100, sat=now, laf=10)
    put(store, "d", T.DONE, now - 100, sat=now, laf=10)
    store.update_tasks(["d"], T.requeue)                               # todo again: not counted
    put(store, "e", T.TODO, now)
    assert store.count_finished_since(now) == 2
    assert store.count_finished_since(now, T.DONE) == 1
    assert store.count_finished_since(now, T.FAILED) == 1
    assert store.count_finished_since(now - 1) == 3
    assert store.count_finished_since(now + 11) == 0


def test_sqlite_queries_use_indexes(store):
    """Every query report and stats make is an index range scan (SQLite)."""
    from riaktq_cli.store.sqlite import SqliteStore
    if not isinstance(store, SqliteStore):
        pytest.skip("SQLite query plans")
    now = clock.now_us()
    for n in range(5):
        put(store, f"t{n}", T.DONE, now - n)
    seen = []
    store._db.set_trace_callback(seen.append)
    try:
        assert len(list(store.iter_ids(status="done", created_before=now, page_size=2))) == 4
        assert len(list(store.iter_ids(created_before=now + 1, page_size=2))) == 5
        store.count_finished_since(now)
        store.count_finished_since(now, T.FAILED)
        store.count_by_status()
        store.oldest_cat(T.TODO)
    finally:
        store._db.set_trace_callback(None)
    plans = {sql: " ".join(row[-1] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql))
             for sql in seen if sql.startswith("SELECT")}
    assert len(plans) >= 10
    for sql, plan in plans.items():
        if "sat + laf" in sql:
            assert "USING INDEX tasks_ended (status=? AND <expr>>?)" in plan, (sql, plan)
        elif "status =" in sql:
            assert re.search(r"USING (COVERING )?INDEX tasks_status_cat \(status=\?", plan), (sql, plan)
        else:
            assert "USING INDEX tasks_cat (cat" in plan, (sql, plan)
        if "id >" in sql:  # later pages start where the last one ended
            assert "cat>?" in plan, (sql, plan)
        assert "SCAN tasks" not in plan, (sql, plan)


def test_stats_watch_in_a_terminal(store, config_file):
    now = clock.now_us()
    for n in range(6):
        put(store, f"job-{n}", T.NEXTUP, now - seconds_to_us(M) + n)
    proc, master = spawn_in_pty(RIAKTQ + ["--config", str(config_file), "stats", "--watch"])

    def close_tasks():
        time.sleep(0.8)
        for n in range(6):
            store.update_tasks([f"job-{n}"], lambda t: T.close(t, "w1", T.DONE, b"ok", clock.now_us(), 1)[0])
            time.sleep(0.4)

    closer = threading.Thread(target=close_tasks)
    try:
        raw = read_pty(master, 30, until=lambda text: "done" in ANSI.sub("", text))
        closer.start()
        raw += read_pty(master, 30, until=lambda text: re.search(r"\bdone\s+6\b", ANSI.sub("", text)))
        raw += read_pty(master, 1.2)
        proc.send_signal(signal.SIGINT)
        raw += read_pty(master, 10)
        assert proc.wait(timeout=10) == 0
    finally:
        closer.join()
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    screen = ANSI.sub("", raw)
    done_counts = [int(n) for n in re.findall(r"\bdone\s+(\d+)", screen)]
    assert done_counts[0] == 0 and done_counts[-1] == 6
    assert len(set(done_counts)) >= 3 and done_counts == sorted(done_counts)
    assert "\x1b[2J" not in raw and "\x1b[?1049h" not in raw  # redrawn in place, never cleared
    assert "Traceback" not in screen
