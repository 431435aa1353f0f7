"""Operations (issue 11): metrics, JSON logs, service units, views a terminal
can trust, read-only commands, one truth about instances, observe's memory,
and exit codes. Store-facing tests run on both stores.
"""

import configparser
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from riaktq_cli.core import clock, task as T
from riaktq_cli.store.base import INBOX, INSTANCE
from tests.conftest import ROOT, wait_until
from tests.terminal import read_pty, spawn_in_pty

RIAKTQ = [sys.executable, "-m", "riaktq_cli"]
ESCAPES = "\x1b]0;PWNED\x07evil\rOVERWRITE\x1b]52;c;aGk=\x07\x9b2J"


def run(*args, cwd=None, input=None, env=None, config=None):
    argv = RIAKTQ + (["--config", str(config)] if config else []) + [str(a) for a in args]
    return subprocess.run(argv, cwd=cwd, input=input, capture_output=True, timeout=120, env=env)


def one_line_error(result, needle, code=2):
    err = result.stderr.decode()
    assert result.returncode == code, (result.returncode, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0], err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put(store, task_id, status, cat=None, **fields):
    """A task in `status`, written through the store."""
    task = T.new_task(task_id, fields.pop("data", b"x"), now=cat or clock.now_us())
    store.create_task(task)
    if status != T.TODO:
        def change(t):
            t = T.assign(t, fields.get("assignee", "w1"))
            if status == T.NEXTUP:
                return t
            return T.close(t, t.assignee, status, b"out", clock.now_us(), 1000)[0]
        store.update_tasks([task_id], change)


def pty_output(argv, until=None, cwd=None, timeout=60):
    """Everything `argv` writes to a terminal, until it exits (or `until(text)`)."""
    proc, master = spawn_in_pty(argv, cwd=cwd)
    try:
        return read_pty(master, timeout, until)
    finally:
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        os.close(master)


# Control sequences a program may legitimately emit on a terminal (rich's
# colours and cursor moves): what is left after removing them must hold no
# control character but newlines.
SGR_AND_CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def assert_no_raw_controls(text):
    text = re.sub(r"\r(?=\x1b\[)", "", text)  # rich's in-place redraw: CR, then cursor moves
    cleaned = SGR_AND_CURSOR.sub("", text).replace("\r\n", "\n")
    bad = [c for c in cleaned if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0]
    assert not bad, f"raw control characters reached the terminal: {bad!r}"


# --- metrics -----------------------------------------------------------------------

def parse_metrics(text):
    """{(name, frozenset(labels)): value} through prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def test_stats_prometheus_parses_and_matches_json(store, config_file):
    now = clock.now_us()
    for n in range(3):
        put(store, f"todo-{n}", T.TODO, cat=now - n * 1_000_000)
    put(store, "running", T.NEXTUP)
    put(store, "done-1", T.DONE)
    put(store, "done-2", T.DONE)
    put(store, "failed-1", T.FAILED)
    store.put_record(INSTANCE, "w1", {"name": "w1", "status": "busy", "heartbeat": now, "taken": 0,
                                      "queue": [], "current": None, "outbox": []})
    store.put_record(INSTANCE, "w2", {"name": "w2", "status": "stopped", "heartbeat": now, "taken": 0,
                                      "queue": [], "current": None, "outbox": []})
    store.put_record(INSTANCE, "w3", {"name": "w3", "status": "idle", "heartbeat": now - 10**10,
                                      "taken": 0, "queue": [], "current": None, "outbox": []})
    # judged with a 10-minute instance timeout (as a scheduler publishes it), so however slow the
    # machine is between the two commands, w1 stays busy in both; w3's heartbeat is older still
    from riaktq_cli.store import published as scheduler_settings
    scheduler_settings.publish(store, "s1", 600_000_000, 0.1, 1)
    prom = run("stats", "--format", "prometheus", config=config_file)
    assert prom.returncode == 0, prom.stderr
    figures = json.loads(run("stats", "--format", "json", config=config_file).stdout)
    samples = parse_metrics(prom.stdout.decode())
    for status in T.STATUSES:
        assert samples[("riaktq_tasks", frozenset({("status", status)}))] == figures["counts"][status]
    assert figures["counts"] == {"todo": 3, "nextup": 1, "done": 2, "failed": 1}
    states = {}
    for row in figures["instances"]:
        states[row["status"]] = states.get(row["status"], 0) + 1
    assert states == {"busy": 1, "stopped": 1, "lost": 1}
    for state in ("idle", "busy", "lost", "stopped"):
        assert samples[("riaktq_instances", frozenset({("state", state)}))] == states.get(state, 0)
    assert samples[("riaktq_tasks_closed_last_hour", frozenset())] == figures["closed_last_hour"] == 3
    assert samples[("riaktq_tasks_failed_last_hour", frozenset())] == figures["failed_last_hour"] == 1
    assert samples[("riaktq_oldest_todo_age_seconds", frozenset())] >= 2.0
    assert samples[("riaktq_instance_timeout_seconds", frozenset())] == figures["instance_timeout"]


def test_scheduler_serves_metrics_while_it_runs(store, procs, tmp_path):
    port = free_port()
    procs.start("scheduler", "--interval", "100ms", "--metrics", f"127.0.0.1:{port}", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "echo-1", name="worker")
    for n in range(3):
        assert procs.run("open", f"m{n}", "--in", f"v{n}").returncode == 0
    wait_until(lambda: store.count_by_status()["done"] == 3, timeout=60, message="3 done")

    def scrape():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                return parse_metrics(reply.read().decode())
        except OSError:
            return None

    def closed_all():
        samples = scrape()
        return samples if samples and samples.get(
            ("riaktq_transitions_total", frozenset({("transition", "close")}))) == 3 else None

    samples = wait_until(closed_all, timeout=30, message="/metrics counting 3 closes")
    assert samples[("riaktq_transitions_total", frozenset({("transition", "assign")}))] == 3
    assert samples[("riaktq_tasks", frozenset({("status", "done")}))] == 3
    assert samples[("riaktq_instances", frozenset({("state", "idle")}))] + \
        samples[("riaktq_instances", frozenset({("state", "busy")}))] == 1
    assert samples[("riaktq_iteration_duration_seconds_count", frozenset())] >= 1
    assert samples[("riaktq_store_requests_total", frozenset({("operation", "update_tasks")}))] >= 2
    assert samples[("riaktq_store_up", frozenset())] == 1
    hints = {event: samples[("riaktq_hints_total", frozenset({("event", event)}))]
             for event in ("received", "ignored", "sent")}
    if store.data_version() is None:   # Riak: hints on by default; the opens and the results woke it
        assert hints["received"] >= 1 and hints["sent"] >= 1 and hints["ignored"] == 0, hints
    else:                              # the embedded store has its own wake-ups: hints off
        assert hints == {"received": 0, "ignored": 0, "sent": 0}


def test_counting_store_counts_errors_by_kind(store):
    from riaktq_cli.views import metrics
    from riaktq_cli.core.errors import StoreUnavailable

    registry = metrics.enable()
    counted = metrics.CountingStore(store)
    counted.get_task("nope")
    assert list(counted.iter_ids()) == []

    class Broken:
        def get_task(self, task_id):
            raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable):
        metrics.CountingStore(Broken()).get_task("x")
    value = registry.get_sample_value
    assert value("riaktq_store_requests_total", {"operation": "get_task"}) == 2
    assert value("riaktq_store_requests_total", {"operation": "iter_ids"}) == 1
    assert value("riaktq_store_errors_total", {"operation": "get_task", "kind": "unavailable"}) == 1


def test_metrics_address_is_checked(config_file):
    one_line_error(run("scheduler", "--metrics", "localhost", config=config_file), "ADDR:PORT")
    one_line_error(run("scheduler", "--metrics", ":99999", config=config_file), "bad port")


# --- structured logs --------------------------------------------------------------

def json_lines(path):
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line parses, or this fails


def test_json_logs_parse_line_by_line(store, procs, tmp_path, config_file):
    scheduler = procs.start("--log-format", "json", "scheduler", "--interval", "100ms", name="scheduler")
    # The config's [log] format applies when no --log-format is given.
    config_file.write_text(config_file.read_text() + '\n[log]\nformat = "json"\n')
    worker = procs.start("worker", "--handler", "echo", "--name", "echo-1", name="worker")
    assert procs.run("open", "j1", "--in", "x").returncode == 0
    wait_until(lambda: (store.get_task("j1").status == T.DONE), timeout=60, message="j1 done")
    wait_until(lambda: any(r.get("transition") == "close" for r in json_lines(scheduler.log_path)),
               message="close logged")
    procs.stop(scheduler)
    procs.stop(worker)
    records = json_lines(scheduler.log_path)
    for record in records:
        assert {"time", "level", "role", "message"} <= set(record)
        assert record["role"] == "scheduler" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["time"])
    assert all(r.get("instance") for r in records if "lease" in r["message"])
    transitions = {r["transition"]: r for r in records if "transition" in r}
    assert transitions["assign"]["task"] == "j1" and transitions["assign"]["assignee"] == "echo-1"
    assert transitions["close"]["task"] == "j1" and transitions["close"]["status"] == "done"
    worker_records = json_lines(worker.log_path)
    assert worker_records and all(r["role"] == "worker" and r["instance"] == "echo-1" for r in worker_records)
    assert any(r.get("task") == "j1" and r.get("status") == "done" for r in worker_records)


def test_log_lines_escape_controls_and_never_raise():
    import errno
    import logging

    from riaktq_cli.runtime import logs

    class Broken(io.StringIO):
        def write(self, text):
            raise OSError(errno.EPIPE, "Broken pipe")

    saved = logs._stream
    root = logging.getLogger("riaktq")
    handlers = root.handlers[:]
    try:
        out = io.StringIO()
        logs._stream = out
        root.handlers = [logs._SafeHandler(out)]
        logs.set_format("text")
        root.setLevel(logging.INFO)
        logs.info_line("close t1 \x1b]0;x\x07")
        root.warning("node says %s", "\x1b[2J")
        assert "\x1b" not in out.getvalue() and out.getvalue().count("\\x1b") == 2
        logs._stream = Broken()
        root.handlers = [logs._SafeHandler(Broken())]
        logs.info_line("close t1")           # EPIPE on stderr: no exception
        root.warning("still alive")          # nor through logging
        logs.set_format("json")
        logs.info_line("close t1", task="t1", transition="close")
    finally:
        logs._stream = saved
        root.handlers = handlers
        logs.set_format("text")


# --- a terminal can trust what it shows ----------------------------------------------

def test_escape_sequences_are_escaped_for_people_and_exact_for_machines(store, config_file, tmp_path):
    assert run("open", "esc1", "--in", ESCAPES, config=config_file).returncode == 0
    big = os.urandom(200_000)
    (tmp_path / "big.bin").write_bytes(big)
    assert run("open", "bin1", "--in-file", tmp_path / "big.bin", config=config_file).returncode == 0
    store.update_tasks(["esc1"], lambda t: T.assign(t, "w1"))
    store.update_tasks(["esc1"], lambda t: T.close(t, "w1", T.DONE, ESCAPES.encode(), clock.now_us(), 5)[0])

    human = {
        "tasks": run("tasks", config=config_file).stdout.decode(),
        "get": run("get", "esc1", config=config_file).stdout.decode(),
        "get-bin": run("get", "bin1", config=config_file).stdout.decode(),
        "report": run("report", "--format", "table", config=config_file).stdout.decode(),
        "tasks-tty": pty_output(RIAKTQ + ["--config", str(config_file), "tasks"]),
        "get-tty": pty_output(RIAKTQ + ["--config", str(config_file), "get", "esc1"]),
    }
    for name, text in human.items():
        assert_no_raw_controls(text)
    for name in ("get", "get-tty"):
        assert "\\x1b]0;PWNED\\x07evil\\rOVERWRITE" in human[name], name
    for name in ("tasks", "tasks-tty", "report"):  # shortened, with the size
        assert "\\x1b]0;PWNED" in human[name] and " <40 bytes>" in human[name], name
    assert "<200000 bytes, base64>" in human["tasks"] and "<200000 bytes, base64>" in human["get-bin"]
    assert len(human["get-bin"]) < 2000  # not the whole base64

    rows = {r["id"]: r for r in json.loads(run("tasks", "--format", "json", config=config_file).stdout)}
    assert rows["esc1"]["in"] == ESCAPES and rows["esc1"]["out"] == ESCAPES
    assert json.loads(run("get", "esc1", "--format", "json", config=config_file).stdout)["out"] == ESCAPES
    import base64
    assert base64.b64decode(rows["bin1"]["in"]["base64"]) == big
    csv_text = run("tasks", "--format", "csv", config=config_file).stdout.decode()
    assert ESCAPES.replace("\r", "") in csv_text.replace("\r", "")
    assert run("report", "--format", "ids", config=config_file).stdout.decode().split() == ["esc1", "bin1"]


def test_wait_prints_exact_bytes_on_a_pipe_and_escaped_on_a_terminal(store, procs, config_file):
    procs.start("scheduler", "--interval", "100ms", name="scheduler")
    procs.start("worker", "--handler", "echo", "--name", "echo-1", name="worker")
    piped = procs.run("open", "w-pipe", "--in", ESCAPES, "--wait", "--timeout", "60s")
    assert piped.returncode == 0 and piped.stdout == ESCAPES.encode()
    shown = pty_output(RIAKTQ + ["--config", str(config_file), "open", "w-tty", "--in", ESCAPES + "\nline 2",
                                 "--wait", "--timeout", "60s"])
    assert_no_raw_controls(shown)
    assert "\\x1b]0;PWNED\\x07evil\\rOVERWRITE" in shown and "line 2" in shown


def test_instance_records_are_escaped_in_instances_and_stats(store, config_file):
    now = clock.now_us()
    store.put_record("scheduler", "settings", {"instance_timeout": 3600})  # live however slow the test
    store.put_record(INSTANCE, "evil\x1b]0;x\x07", {"name": "evil", "tags": ["t\x1b[31m"], "status": "busy",
                                                   "heartbeat": now, "taken": 0, "queue": [],
                                                   "current": {"id": "a\rb", "seq": 1, "since": now},
                                                   "outbox": []})
    views = [run("instances", config=config_file).stdout.decode(),
             run("stats", config=config_file).stdout.decode(),
             pty_output(RIAKTQ + ["--config", str(config_file), "stats", "--watch"],
                        until=lambda text: "evil" in text and "a\\rb" in text)]
    for text in views:
        assert_no_raw_controls(text)
        assert "evil\\x1b]0;x\\x07" in text
    rows = json.loads(run("instances", "--format", "json", config=config_file).stdout)
    assert rows[0]["name"] == "evil\x1b]0;x\x07"


def test_display_helpers():
    from riaktq_cli.core.output import display, escape
    assert escape("ok é 漢") == "ok é 漢"
    assert escape("a\x1bb\x9bc\u202ed\x00") == "a\\x1bb\\x9bc\\u202ed\\x00"
    assert escape("a\nb\tc\r", keep_newlines=True) == "a\nb\tc\\r"
    assert display({"base64": "AAECAw=="}) == "<4 bytes, base64>"
    assert display("x" * 1000, 30).endswith("… <1000 bytes>") and len(display("x" * 1000, 30)) == 30
    assert display(None) == ""


# --- read-only commands never create a store ------------------------------------------

@pytest.mark.parametrize("args", [["tasks"], ["get", "x"], ["stats"], ["stats", "--format", "prometheus"],
                                  ["report"], ["instances"], ["rm", "x"], ["requeue", "x"], ["check"]])
def test_read_only_commands_create_nothing(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if k != "RIAKTQ_CONFIG"}
    result = run(*args, cwd=tmp_path, env=env)
    if args == ["check"]:
        assert result.returncode == 1 and "✗" in result.stdout.decode()
    else:
        one_line_error(result, "no queue here")
        assert "riaktq init" in result.stderr.decode()
    assert list(tmp_path.iterdir()) == []


def test_commands_that_create_the_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RIAKTQ_CONFIG"}
    for sub, args in [("a", ["open", "t", "--in", "x"]), ("b", ["scheduler", "--once"]), ("c", ["init"])]:
        (tmp_path / sub).mkdir()
        assert run(*args, cwd=tmp_path / sub, env=env).returncode == 0
        assert (tmp_path / sub / "riaktq.db").exists(), args
        assert run("tasks", cwd=tmp_path / sub, env=env).returncode == 0


# --- one truth about instances ---------------------------------------------------------

def test_lost_and_stopped_instances_hold_nothing(store, config_file):
    now = clock.now_us()
    entry = {"seq": 3, "id": "queued", "in": "", "tags": []}
    store.put_record(INBOX, "lost-1", {"seq": 3, "entries": [entry], "committed": []})
    store.put_record(INSTANCE, "lost-1", {
        "name": "lost-1", "status": "busy", "heartbeat": now - 3600 * 10**6, "taken": 2,
        "queue": [{"id": "q2", "seq": 2}], "current": {"id": "running", "seq": 1, "since": now - 10**7},
        "outbox": []})
    result = {"id": "r1", "run": 1, "seq": 1, "status": "done", "out": "", "sat": now, "laf": 1}
    store.put_record(INBOX, "stopped-1", {"seq": 1, "entries": [], "committed": [["r1", 1]]})
    store.put_record(INSTANCE, "stopped-1", {
        "name": "stopped-1", "status": "stopped", "heartbeat": now, "taken": 1, "queue": [],
        "current": None, "outbox": [result]})
    rows = {r["name"]: r for r in json.loads(run("instances", "--format", "json", config=config_file).stdout)}
    assert (rows["lost-1"]["status"], rows["lost-1"]["current"], rows["lost-1"]["queue"]) == ("lost", None, 0)
    assert (rows["stopped-1"]["status"], rows["stopped-1"]["outbox"]) == ("stopped", 0)
    table = run("instances", config=config_file).stdout.decode()
    assert "running" not in table
    stats = json.loads(run("stats", "--format", "json", config=config_file).stdout)
    assert {r["name"]: r["current"] for r in stats["instances"]} == {"lost-1": None, "stopped-1": None}


def test_views_judge_liveness_with_the_schedulers_timeout(store, procs, config_file):
    now = clock.now_us()
    store.put_record(INSTANCE, "slow-1", {"name": "slow-1", "status": "idle", "heartbeat": now - 10 * 10**6,
                                          "taken": 0, "queue": [], "current": None, "outbox": []})
    # config_file says instance_timeout = 2s: 10s without a heartbeat is lost...
    assert json.loads(run("instances", "--format", "json", config=config_file).stdout)[0]["status"] == "lost"
    # ...until the scheduler publishes that it runs with 1h.
    assert procs.run("scheduler", "--once", "--instance-timeout", "1h").returncode == 0
    assert store.get_record("scheduler", "settings")["instance_timeout"] == 3600
    assert json.loads(run("instances", "--format", "json", config=config_file).stdout)[0]["status"] == "idle"
    stats = json.loads(run("stats", "--format", "json", config=config_file).stdout)
    assert (stats["instance_timeout"], stats["instance_timeout_from"]) == (3600, "scheduler")
    assert stats["instances"][0]["status"] == "idle"


# --- observe remembers --------------------------------------------------------------------

def test_restarted_observer_runs_nothing_twice(store):
    from riaktq_cli.config.loading import ObserverQuery
    from riaktq_cli.views.observer import Observer

    now = clock.now_us()
    put(store, "old", T.TODO, cat=now - 3600 * 10**6)
    queries = [ObserverQuery("old-todo", "todo", 60.0), ObserverQuery("any", None, None)]
    first = io.StringIO()
    assert Observer(store, queries, "00:00:00", first, clock_fn=lambda: now).check() == [("old-todo", 1), ("any", 1)]
    again = io.StringIO()
    restarted = Observer(store, queries, "00:00:00", again, clock_fn=lambda: now)
    assert restarted.check() == [] and again.getvalue() == ""
    next_day = Observer(store, queries, "00:00:00", again, clock_fn=lambda: now + 86_400 * 10**6)
    assert [key for key, _ in next_day.check()] == ["old-todo", "any"]


# --- exit codes, help, check -----------------------------------------------------------

def test_exit_codes_for_what_a_user_types(store, config_file, tmp_path):
    one_line_error(run("open", "t", "--in-file", tmp_path / "missing.bin", config=config_file), "missing.bin")
    one_line_error(run("open", "--batch", tmp_path / "missing.jsonl", config=config_file), "missing.jsonl")
    one_line_error(run("report", "--age", "99999999999d", config=config_file), "99999999999d")
    one_line_error(run("requeue", "--status", "done", "--age", "99999999999d", config=config_file), "99999999999d")
    one_line_error(run("open", "t", "--in", "x", "--priority", str(2**70), config=config_file), "priority")
    one_line_error(run("open", "t", "--in", "x", "--retry", str(2**70), config=config_file), "retry")
    one_line_error(run("report", "--limit", str(2**70), config=config_file), "limit")
    one_line_error(run("requeue", "--status", "done", "--retry", str(2**70), config=config_file), "retry")
    (tmp_path / "bad.jsonl").write_text('not json\n{"id": "big", "in": "x", "priority": %d}\n' % 2**70)
    bad_batch = run("open", "--batch", tmp_path / "bad.jsonl", config=config_file)
    assert bad_batch.returncode == 2 and b"2 bad line(s)" in bad_batch.stderr  # a line per bad line, then this
    assert b'line 2: "priority" out of range' in bad_batch.stderr
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(b'[store]\nbackend = "sqlite"\n# caf\xe9\n')
    one_line_error(run("tasks", config=latin), f"config file {latin}: not UTF-8")
    handler = tmp_path / "inttags.py"
    handler.write_text("def tags(state):\n    return 5\n\ndef handle(task_id, data, tags, state):\n    return data\n")
    one_line_error(run("worker", "--name", "w1", "--handler", handler, config=config_file), "tags()")
    one_line_error(run("worker", "--count", "2", "--handler", handler, config=config_file), "tags()")
    assert store.list_records(INSTANCE) == {}
    assert list(store.iter_ids()) == []


def test_every_command_has_examples_and_version():
    from riaktq_cli.cli.main import COMMANDS
    for name in COMMANDS:
        result = run(name, "--help")
        assert result.returncode == 0 and b"Example" in result.stdout, name
    version = run("--version")
    assert version.returncode == 0 and re.match(rb"riaktq, version \d+\.\d+", version.stdout)


def test_completion_of_task_ids_and_instance_names(store, config_file, tmp_path):
    for task_id in ("alpha-1", "alpha-2", "beta-1"):
        put(store, task_id, T.TODO)
    store.put_record(INSTANCE, "gpu-1", {"name": "gpu-1", "heartbeat": 0})
    store.put_record(INSTANCE, "cpu-1", {"name": "cpu-1", "heartbeat": 0})

    def complete(words):
        env = dict(os.environ, _RIAKTQ_COMPLETE="bash_complete", COMP_WORDS=" ".join(words),
                   COMP_CWORD=str(len(words) - 1), RIAKTQ_CONFIG=str(config_file))
        out = subprocess.run([sys.executable, "-m", "riaktq_cli"], env=env, capture_output=True, timeout=60)
        return [line.split(",", 1)[1] for line in out.stdout.decode().splitlines()]

    assert complete(["riaktq", "instances", "gp"]) == ["gpu-1"]
    if "sqlite" in config_file.read_text():
        assert complete(["riaktq", "get", "alpha"]) == ["alpha-1", "alpha-2"]
    readme = (ROOT / "README.md").read_text()
    for shell in ("bash_source", "zsh_source", "fish_source"):
        assert f"_RIAKTQ_COMPLETE={shell}" in readme


def test_check_round_trips_a_probe_record(store, config_file):
    result = run("check", config=config_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ probe record: written, read back and deleted" in result.stdout.decode()
    assert not [name for name in store.list_records("scheduler") if name.startswith("check-probe")]


def test_check_reports_corrupt_and_read_only_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RIAKTQ_CONFIG"}
    good = tmp_path / "good"
    good.mkdir()
    assert run("open", "a", "--in", "x", cwd=good, env=env).returncode == 0
    ok = run("check", cwd=good, env=env)
    assert ok.returncode == 0 and "probe record: written, read back and deleted" in ok.stdout.decode()
    assert "quick_check ok" in ok.stdout.decode()

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "riaktq.db").write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    bad = run("check", cwd=corrupt, env=env)
    assert bad.returncode == 1 and "✗" in bad.stdout.decode() and "Traceback" not in bad.stderr.decode()

    # Read-only: root writes through file modes, so run check as nobody. In WAL
    # mode (as riaktq leaves it) even quick_check needs to write; in rollback
    # mode quick_check passes and the rolled-back write is what fails.
    for mode in ("wal", "delete"):
        shared = Path(tempfile.mkdtemp(prefix="riaktq-ro-"))
        try:
            os.chmod(shared, 0o755)
            shutil.copy(good / "riaktq.db", shared / "riaktq.db")
            import sqlite3
            db = sqlite3.connect(shared / "riaktq.db")
            db.execute(f"PRAGMA journal_mode = {mode}")
            db.close()
            os.chmod(shared / "riaktq.db", 0o444)
            argv = RIAKTQ + ["check"]
            if os.geteuid() == 0:
                if not shutil.which("setpriv"):
                    pytest.skip("needs setpriv to drop root")
                argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + argv
            result = subprocess.run(argv, cwd=shared, env=env, capture_output=True, timeout=60)
            out = result.stdout.decode()
            assert result.returncode == 1, out + result.stderr.decode()
            assert "✗" in out and "cannot write" in out, out
            if mode == "delete":
                assert "✓ sqlite" in out and "quick_check ok" in out, out
        finally:
            shutil.rmtree(shared, ignore_errors=True)


# --- service files ----------------------------------------------------------------------

UNITS = ROOT / "contrib" / "systemd"


def unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


@pytest.mark.parametrize("name", ["riaktq-scheduler.service", "riaktq-worker@.service"])
def test_unit_files_hold_what_operations_need(name):
    service = unit(UNITS / name)["Service"]
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"].rstrip("s")) > 30  # above the worker's shutdown grace
    assert service["ExecStart"].startswith("/usr/local/bin/riaktq ")
    if "@" in name:
        assert "--name %i" in service["ExecStart"]


def test_systemd_analyze_verifies_the_units(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (the parser test above still runs)")
    riaktq = shutil.which("riaktq", path=str(Path(sys.executable).parent)) or sys.executable
    for name, as_name in [("riaktq-scheduler.service", "riaktq-scheduler.service"),
                          ("riaktq-worker@.service", "riaktq-worker@echo-1.service")]:
        text = (UNITS / name).read_text().replace("/usr/local/bin/riaktq", riaktq)
        (tmp_path / as_name).write_text(text)
        result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / as_name)],
                                capture_output=True, text=True, timeout=60)
        # verify exits 0 on an unparsable value and only says so: judge its words too.
        complaints = [line for line in (result.stdout + result.stderr).splitlines()
                      if as_name in line or "riaktq" in line]
        assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_supervisord_example_parses():
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ROOT / "contrib" / "supervisord" / "riaktq.conf")
    assert {"program:riaktq-scheduler", "program:riaktq-worker"} <= set(conf.sections())
    assert int(conf["program:riaktq-worker"]["stopwaitsecs"]) > 30
    assert conf["program:riaktq-worker"]["stopsignal"] == "TERM"
