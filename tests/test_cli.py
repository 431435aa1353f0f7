"""What a user types wrong: one clear line, a non-zero exit, nothing written."""

import subprocess
import sys

import pytest

from tests.conftest import write_config


def riaktq(*args, cwd, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "riaktq_cli", *args], cwd=cwd, input=input,
                          capture_output=True, timeout=60, env=env)


def one_line_error(result, needle):
    err = result.stderr.decode()
    assert result.returncode != 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0], err


def test_user_errors_are_one_line_and_write_nothing(store, config_file, tmp_path):
    cfg = ["--config", str(config_file)]
    assert riaktq(*cfg, "open", "dup", "--in", "x", cwd=tmp_path).returncode == 0
    one_line_error(riaktq(*cfg, "open", "dup", "--in", "y", cwd=tmp_path), "task 'dup' already exists")
    assert store.get_task("dup").in_ == b"x"
    one_line_error(riaktq(*cfg, "worker", "--name", "w", "--handler", "no_such_handler", cwd=tmp_path),
                   "unknown handler 'no_such_handler'")
    one_line_error(riaktq(*cfg, "worker", "--name", "w", "--handler", str(tmp_path / "nope.py"), cwd=tmp_path),
                   "no such file")
    assert store.list_records("instance") == {}
    one_line_error(riaktq(*cfg, "scheduler", "--interval", "5x", cwd=tmp_path), "bad duration '5x'")
    one_line_error(riaktq(*cfg, "open", "t", "--in", "x", "--wait", "--timeout", "5x", cwd=tmp_path),
                   "bad duration '5x'")
    one_line_error(riaktq(*cfg, "get", "missing", cwd=tmp_path), "no task 'missing'")
    one_line_error(riaktq(*cfg, "rm", "missing", cwd=tmp_path), "no task 'missing'")
    one_line_error(riaktq(*cfg, "open", "bad id", "--in", "x", cwd=tmp_path), "whitespace")
    one_line_error(riaktq(*cfg, "open", "noinput", cwd=tmp_path), "--in TEXT or --in-file")
    one_line_error(riaktq(*cfg, "worker", "--handler", "echo", cwd=tmp_path), "--name NAME")
    one_line_error(riaktq(*cfg, "worker", "--handler", "shell", "--name", "s", cwd=tmp_path), "needs --option cmd")
    assert [task_id for task_id in store.iter_ids()] == ["dup"]


@pytest.mark.parametrize("body,needle", [
    (None, "not found"),
    ("[scheduler\ninterval = 1", "not valid TOML"),
    ("[scheduler]\nintervall = '5s'\n", "unknown key 'intervall' in [scheduler]"),
    ("[scheduler]\ninterval = '5x'\n", "bad [scheduler] interval '5x'"),
    ("[store]\nbackend = 'mysql'\n", "bad [store] backend"),
])
def test_config_errors(tmp_path, body, needle):
    path = tmp_path / "riaktq.toml"
    if body is not None:
        path.write_text(body)
    one_line_error(riaktq("--config", str(path), "tasks", cwd=tmp_path), needle)
    one_line_error(riaktq("--config", str(path), "open", "a", "--in", "x", cwd=tmp_path), needle)
    assert not (tmp_path / "riaktq.db").exists()


def test_config_from_environment_and_default_file(tmp_path):
    import os
    env = dict(os.environ, RIAKTQ_CONFIG=str(tmp_path / "missing.toml"))
    one_line_error(riaktq("tasks", cwd=tmp_path, env=env), "missing.toml: not found")
    env.pop("RIAKTQ_CONFIG")
    assert riaktq("open", "a", "--in", "x", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "riaktq.db").exists()  # no config at all: embedded store in cwd
    assert riaktq("init", cwd=tmp_path, env=env).returncode == 0
    one_line_error(riaktq("init", cwd=tmp_path, env=env), "already exists")
    assert riaktq("get", "a", cwd=tmp_path, env=env).returncode == 0  # ./riaktq.toml → ./riaktq.db


def test_batch_reports_bad_lines_and_opens_nothing(store, config_file, tmp_path):
    lines = ['{"id": "ok-1", "in": "a"}', 'not json', '{"id": "ok-2", "in": {"base64": "AAE="}}',
             '{"id": "ok-1", "in": "again"}', '{"id": 5}', '{"id": "x", "priority": "high"}', '']
    result = riaktq("--config", str(config_file), "open", "--batch", "-", cwd=tmp_path,
                    input="\n".join(lines).encode())
    err = result.stderr.decode()
    assert result.returncode != 0 and "Traceback" not in err
    for needle in ["line 2: not JSON", "line 4: id 'ok-1' repeats line 1", 'line 5: "id" must be a string',
                   'line 6: "priority" must be an integer', "4 bad line(s)"]:
        assert needle in err
    assert list(store.iter_ids()) == []


def test_batch_with_existing_ids_opens_the_rest(store, config_file, tmp_path):
    riaktq("--config", str(config_file), "open", "b", "--in", "old", cwd=tmp_path)
    lines = "\n".join(f'{{"id": "{i}", "in": "{i}", "priority": 2, "tags": ["t"]}}' for i in "abc")
    result = riaktq("--config", str(config_file), "open", "--batch", "-", cwd=tmp_path, input=lines.encode())
    assert result.returncode == 1
    assert "line 2: task 'b' already exists" in result.stderr.decode()
    assert store.get_task("a").priority == 2 and store.get_task("a").tags == ("t",)
    assert store.get_task("b").in_ == b"old"


def test_tasks_and_get_formats(store, config_file, tmp_path):
    import csv
    import io
    import json
    cfg = ["--config", str(config_file)]
    for i in range(3):
        riaktq(*cfg, "open", f"t{i}", "--in", f"v{i}", "--priority", str(i), cwd=tmp_path)
    rows = json.loads(riaktq(*cfg, "tasks", "--format", "json", cwd=tmp_path).stdout)
    assert [r["id"] for r in rows] == ["t0", "t1", "t2"] and rows[1]["in"] == "v1"
    assert set(rows[0]) == {"id", "status", "priority", "retry", "assignee", "in", "out", "sat", "laf",
                            "cat", "tags", "rev", "run", "lost", "max_attempts", "time_limit", "due", "retry_delay", "inc",
                            "cancel"}
    table = list(csv.DictReader(io.StringIO(riaktq(*cfg, "tasks", "--format", "csv", "--limit", "2",
                                                   cwd=tmp_path).stdout.decode())))
    assert [r["id"] for r in table] == ["t0", "t1"]
    assert b"t2" in riaktq(*cfg, "tasks", "--status", "todo", cwd=tmp_path).stdout
    assert riaktq(*cfg, "get", "t2", cwd=tmp_path).stdout.decode().split("\n")[0].split() == ["id", "t2"]


def test_verbose_shows_traceback_only_when_asked(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[nope]\n")
    quiet = riaktq("--config", str(path), "tasks", cwd=tmp_path)
    loud = riaktq("--config", str(path), "-v", "tasks", cwd=tmp_path)
    assert b"Traceback" not in quiet.stderr and b"Traceback" in loud.stderr


def test_help_teaches():
    for cmd in ([], ["open"], ["worker"], ["scheduler"], ["tasks"], ["instances"], ["init"]):
        result = riaktq(*cmd, "--help", cwd=".")
        assert result.returncode == 0 and b"Usage:" in result.stdout
    assert b"Examples" in riaktq("open", "--help", cwd=".").stdout
