"""One way to fail, one path for settings, and the store said at start.

Every failure a user can cause is one line after the one prefix
`riaktq: error: `, with the exit code of its kind (1 refused, 2 bad input or
config, 3 store unreachable), printed by `logs.report_failure`; settings
resolve through `settings.resolve` (flag, env, file, default) wherever they
are read; the daemons, `check` and `init` say which store they use and why.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from riaktq_cli.config import loading as config, settings
from tests.conftest import Processes, wait_until, write_config

PREFIX = "riaktq: error: "


def run(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "riaktq_cli", *args], cwd=cwd, capture_output=True,
                          timeout=60, env=dict(os.environ, **(env or {})))


def failure_line(result, code):
    """The one line of a failure, checked for its prefix and exit code."""
    err = result.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert result.returncode == code, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(PREFIX), err
    return lines[0][len(PREFIX):]


def test_each_kind_of_failure_is_one_prefixed_line_with_its_exit_code(tmp_path, config_file):
    cfg = ["--config", str(config_file)]
    assert run(*cfg, "open", "a", "--in", "x", cwd=tmp_path).returncode == 0
    assert failure_line(run(*cfg, "open", "a", "--in", "x", cwd=tmp_path), 1) == "task 'a' already exists"
    bad_duration = failure_line(run(*cfg, "open", "b", "--in", "x", "--delay", "5", cwd=tmp_path), 2)
    assert "bad duration '5'" in bad_duration and bad_duration.endswith("(see 'riaktq open --help')")
    usage = failure_line(run(*cfg, "worker", "--handler", "echo", cwd=tmp_path), 2)
    assert usage.startswith("give either --name NAME")
    unknown = failure_line(run(*cfg, "worker", "--count", "1", "--handler", "no_such_module_xyz", cwd=tmp_path), 2)
    assert unknown.startswith("unknown handler 'no_such_module_xyz'")
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('[scheduler]\ninterval = "5"\n')
    assert "bad [scheduler] interval '5'" in failure_line(run("--config", str(bad_config), "tasks", cwd=tmp_path), 2)
    assert "bad $RIAKTQ_LOG_FORMAT 'xml'" in failure_line(
        run(*cfg, "tasks", cwd=tmp_path, env={"RIAKTQ_LOG_FORMAT": "xml"}), 2)
    down = tmp_path / "down.toml"
    down.write_text('[riak]\nnodes = ["http://127.0.0.1:1"]\ntimeout = "1s"\n')
    assert "no node answered" in failure_line(run("--config", str(down), "tasks", cwd=tmp_path), 3)


def test_refused_items_share_the_prefix_and_end_in_exit_1(tmp_path, config_file):
    cfg = ["--config", str(config_file)]
    assert run(*cfg, "open", "a", "--in", "x", cwd=tmp_path).returncode == 0
    result = run(*cfg, "rm", "ghost", "a", "ghost-2", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [f"{PREFIX}no task 'ghost'", f"{PREFIX}no task 'ghost-2'"]


def test_a_failure_in_the_json_log_format_is_one_json_line(tmp_path):
    result = run("--log-format", "json", "get", "nothing", cwd=tmp_path)
    line, = result.stderr.decode().splitlines()
    record = json.loads(line)
    assert result.returncode == 2 and record["level"] == "error" and record["message"].startswith(PREFIX)


def test_flag_then_env_then_file_then_default_along_one_path(tmp_path, monkeypatch):
    """The log format (read before the config, and from it), a command's flag
    and the Riak password all resolve through settings.resolve."""
    path = tmp_path / "riaktq.toml"
    path.write_text('[log]\nformat = "json"\n')

    def failure_format(*args, env=None):
        err = run("--config", str(path), *args, "get", "nothing", cwd=tmp_path, env=env).stderr.decode()
        return "json" if err.startswith("{") else "text"
    assert failure_format() == "json"                                                   # the file
    assert failure_format(env={"RIAKTQ_LOG_FORMAT": "text"}) == "text"                  # env over file
    assert failure_format("--log-format", "json", env={"RIAKTQ_LOG_FORMAT": "text"}) == "json"  # flag over env
    path.write_text("")
    assert failure_format() == "text"                                                   # the default

    fmt = settings.declared("log", "format")
    assert settings.resolve(fmt, None, {}) == (None, None)   # before the config is read: not decided
    loaded = config.from_dict({"riak": {"username": "u", "password": "in-file"}, "store": {"backend": "sqlite"}})
    monkeypatch.setenv("RIAKTQ_RIAK_PASSWORD", "from-env")
    assert loaded.riak_credentials()[1].reveal() == "from-env"
    monkeypatch.delenv("RIAKTQ_RIAK_PASSWORD")
    assert loaded.riak_credentials()[1].reveal() == "in-file"
    # $RIAKTQ_RIAK_PASSWORD wins over a password_file too, for a command's settings as for the store
    with_file = config.from_dict({"riak": {"username": "u", "password_file": "pw"}, "store": {"backend": "sqlite"}})
    resolved = settings.Settings(with_file, environ={"RIAKTQ_RIAK_PASSWORD": "from-env"})
    assert resolved.sources[settings.declared("riak", "password")] == "env"


def test_the_store_and_why_at_start_in_check_and_in_init(tmp_path, riak_url):
    # a [riak] section and no backend: the Riak store, and the line says why
    riak_config = write_config(tmp_path / "riak.toml", "riak", riak_url)
    riak_config.write_text(riak_config.read_text().replace('[store]\nbackend = "riak"\n', ""))
    scheduler = Processes(tmp_path, riak_config).run("scheduler", "--once")
    assert scheduler.returncode == 0, scheduler.stderr
    first = scheduler.stderr.decode().splitlines()[0]
    assert first.endswith(f"store: riak (nodes {riak_url.rstrip('/')}, from [riak] in {riak_config})"), first
    check = Processes(tmp_path, riak_config).run("check")
    assert f"store: riak (nodes {riak_url.rstrip('/')}, from [riak] in {riak_config})" in check.stdout.decode()

    init = run("init", str(tmp_path / "new.toml"), cwd=tmp_path)
    assert f'backend = "sqlite" in {tmp_path / "new.toml"})' in init.stdout.decode()
    assert 'backend = "sqlite"' in (tmp_path / "new.toml").read_text()


def test_worker_count_children_say_the_store_in_the_log_format_flag(tmp_path):
    """No os.environ write: the children get --log-format on their command line."""
    procs = Processes(tmp_path, write_config(tmp_path / "riaktq.toml", "sqlite"))
    proc = procs.start("--log-format", "json", "worker", "--count", "1", "--prefix", "p", "--handler", "echo",
                       name="workers")
    try:
        def child_store_line():
            lines = open(proc.log_path, encoding="utf-8").read().splitlines()
            return [json.loads(line) for line in lines if '"store: sqlite' in line]
        wait_until(lambda: len(child_store_line()) == 2, message="the supervisor's and the child's store lines")
        assert {r.get("instance") for r in child_store_line()} == {None, "p-1"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        procs.cleanup()
