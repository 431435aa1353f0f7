"""Small refusals of the command line, on both stores (issue 18, defect 12):
a task id or instance name that is not UTF-8 is one usage line (exit 2),
not "internal error: UnicodeEncodeError" (exit 70); `cancel --dry-run` says
what it would do; a malformed tag to select by is exit 2, as `open` has it."""

import os

import pytest

from riaktq_cli import BadInput, Queue
from riaktq_cli import task as T
from tests.test_cancel import lines, opened

NOT_UTF8 = os.fsdecode(b"job-\xff")     # what Python makes of the bytes a shell passes


@pytest.mark.parametrize("args", [["get", NOT_UTF8], ["cancel", NOT_UTF8], ["rm", NOT_UTF8],
                                  ["wait", NOT_UTF8], ["requeue", NOT_UTF8], ["instances", "--forget", NOT_UTF8],
                                  ["cancel", "ok", NOT_UTF8], ["tasks", "--assignee", NOT_UTF8]])
def test_an_id_that_is_not_utf8_is_a_usage_error(procs, store, args):
    opened(store, "ok")
    result = procs.run(*args)
    [line] = lines(result.stderr)
    assert result.returncode == 2, line
    assert "job-\\xff' is not UTF-8 text" in line and "internal error" not in line
    assert store.get_task("ok").status == "todo"


def test_cancel_dry_run_says_what_it_would_do(procs, store):
    opened(store, "waiting", "running")
    store.update_tasks(["running"], lambda t: T.assign(t, "w1"))
    dry = procs.run("cancel", "waiting", "running", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert lines(dry.stdout) == ["waiting\twould fail", "running\twould stop"]
    assert {t.status for t in store.get_tasks(["waiting", "running"]).values()} == {"todo", "nextup"}
    done = procs.run("cancel", "waiting", "running")
    assert lines(done.stdout) == ["waiting\tfailed", "running\tcancelling"]


@pytest.mark.parametrize("tag", ["no such,tag;x", "two words", "a;b"])
def test_a_malformed_tag_to_select_by_is_refused(procs, store, config_file, tag):
    opened(store, "ok", tags=["gpu"])
    for args in (["cancel", "--tag", tag], ["cancel", "--tag", tag, "--dry-run"], ["tasks", "--tag", tag]):
        result = procs.run(*args)
        [line] = lines(result.stderr)
        assert result.returncode == 2 and "bad tag" in line, (args, line)
    with Queue.from_config(config_file) as queue, pytest.raises(BadInput):
        queue.cancel_where(tag=tag)
    assert store.get_task("ok").status == "todo"
