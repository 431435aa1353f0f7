"""Handler loading and the built-in handlers."""

import pytest

from riaktq_cli.core.errors import HandlerError
from riaktq_cli.worker.handler import load_handler


def test_echo_and_str_results():
    h = load_handler("echo")
    assert h.run("t", b"\x00\xff", []) == ("done", b"\x00\xff")


def test_handler_from_file_with_init_and_tags(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("def init(options):\n    return options\n"
                    "def tags(state):\n    return ['x', state['extra']]\n"
                    "def handle(task_id, data, tags, state):\n    return f'{task_id}:{data.decode()}:{state[\"k\"]}'\n")
    h = load_handler(str(path), {"k": "v", "extra": "y"})
    assert h.run("t1", b"in", []) == ("done", b"t1:in:v")
    assert h.tags() == ["x", "y"]


def test_handler_by_module_path():
    assert load_handler("handlers.echo").run("t", b"a", []) == ("done", b"a")


def test_failure_reason_is_one_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("def handle(task_id, data, tags, state):\n    raise KeyError('no\\nsuch key')\n")
    status, out = load_handler(str(path)).run("t", b"", [])
    assert status == "failed" and out == b"KeyError: 'no\\nsuch key'"


@pytest.mark.parametrize("spec,needle", [("nope", "unknown handler"), ("/no/such.py", "no such file")])
def test_unknown_handlers(spec, needle):
    with pytest.raises(HandlerError, match=needle):
        load_handler(spec)


def test_module_without_handle(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(HandlerError, match="no handle"):
        load_handler(str(path))


def test_shell_handler_never_interprets_the_input():
    h = load_handler("shell", {"cmd": "cat"})
    assert h.run("t", b"$(rm -rf /) `x` ; | &", []) == ("done", b"$(rm -rf /) `x` ; | &")


def test_shell_handler_failure_and_timeout():
    status, out = load_handler("shell", {"cmd": "sh -c 'echo oops >&2; exit 3'"}).run("t", b"", [])
    assert status == "failed" and out == b"RuntimeError: exit status 3: oops"
    status, out = load_handler("shell", {"cmd": "sleep 5", "timeout": "200ms"}).run("t", b"", [])
    assert status == "failed" and b"ran longer than 0.2s" in out
    status, out = load_handler("shell", {"cmd": "no-such-command-here"}).run("t", b"", [])
    assert status == "failed" and b"command not found" in out


def test_a_handler_calling_exit_fails_the_task_only(tmp_path):
    path = tmp_path / "quitter.py"
    path.write_text("import sys\ndef handle(task_id, data, tags, state):\n    sys.exit(3)\n")
    assert load_handler(str(path)).run("t", b"", []) == ("failed", b"SystemExit: 3")


def test_shell_timeout_kills_what_the_command_started(tmp_path):
    import os
    import time
    pidfile = tmp_path / "child.pid"
    h = load_handler("shell", {"cmd": f"sh -c 'sleep 30 & echo $! > {pidfile}; wait'", "timeout": "300ms"})
    status, out = h.run("t", b"", [])
    assert status == "failed" and b"ran longer than 0.3s" in out
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid), "the command's child outlived the timeout"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
