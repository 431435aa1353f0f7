"""Pure pieces: durations, config checking, transitions, the sibling merge rule."""

import pytest
from hypothesis import given, strategies as st

from riaktq_cli.config import loading as config
from riaktq_cli.core import task as t
from riaktq_cli.core.durations import parse_duration
from riaktq_cli.core.errors import ConfigError, DurationError, TransitionError


@pytest.mark.parametrize("text,seconds", [("250ms", 0.25), ("5s", 5), ("1m", 60), ("2h", 7200),
                                          ("1d", 86400), ("1.5s", 1.5), (" 3s ", 3)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "5", "", "s", "-1s", "1 sec", 5])
def test_bad_durations(text):
    with pytest.raises(DurationError):
        parse_duration(text)


def test_config_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RIAKTQ_CONFIG", raising=False)
    cfg = config.load()
    assert cfg.path is None and cfg.backend == "sqlite"
    assert cfg.sqlite_path == str(tmp_path / "riaktq.db")
    assert cfg.get("scheduler", "interval") == 1 and cfg.get("scheduler", "prefetch") == "auto"


def test_config_relative_path_is_relative_to_the_file(tmp_path):
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "q.toml"
    path.write_text('[sqlite]\npath = "data/q.db"\n[scheduler]\ninterval = "5s"\n')
    cfg = config.load(str(path))
    assert cfg.sqlite_path == str(tmp_path / "etc" / "data" / "q.db")
    assert cfg.get("scheduler", "interval") == 5


@pytest.mark.parametrize("body,needle", [
    ("[sheduler]\ninterval = '5s'\n", "unknown section [sheduler]"),
    ("[scheduler]\ninterval_s = '5s'\n", "unknown key 'interval_s' in [scheduler]"),
    ("[scheduler]\ninterval = '5x'\n", "bad [scheduler] interval '5x'"),
    ("[scheduler]\nprefetch = 0\n", "bad [scheduler] prefetch 0"),
    ("[store]\nbackend = 'redis'\n", "bad [store] backend 'redis'"),
    ("[scheduler\n", "not valid TOML"),
    ("[[observer.query]]\nkey = 'a'\nstatus = 'lost'\n", "bad status 'lost'"),
])
def test_config_errors_name_the_problem(tmp_path, body, needle):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        config.load(str(path))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.toml"))


def test_template_loads(tmp_path):
    for url in (None, "http://10.0.0.1:8098"):
        path = tmp_path / "c.toml"
        path.write_text(config.template(url))
        assert config.load(str(path)).backend == ("riak" if url else "sqlite")


def make(**kw):
    return t.new_task(kw.pop("id", "a"), b"in", now=kw.pop("now", 1), **kw)


def test_lifecycle_transitions():
    task = make(retry=1, priority=5)
    assert (task.status, task.rev) == ("todo", 1)
    task = t.assign(task, "w1")
    assert (task.status, task.assignee, task.rev) == ("nextup", "w1", 2)
    with pytest.raises(TransitionError):
        t.close(task, "w2", "done", b"x", 1, 1)
    task, kind = t.close(task, "w1", "failed", b"boom", 10, 3)
    assert kind == "restart"
    assert (task.status, task.retry, task.priority, task.assignee, task.out) == ("todo", 0, 4, None, b"boom")
    task = t.assign(task, "w2")
    task, kind = t.close(task, "w2", "failed", b"boom2", 20, 3)
    assert kind == "close" and task.status == "failed" and task.assignee == "w2" and task.out == b"boom2"
    with pytest.raises(TransitionError):
        t.assign(task, "w1")
    task = t.requeue(task, retry=2)
    assert (task.status, task.retry, task.out) == ("todo", 2, b"boom2")


def test_rollback_clears_assignee():
    task, kind = t.rollback(t.assign(make(), "w1"))
    assert kind == "rollback"
    assert task.status == "todo" and task.assignee is None
    with pytest.raises(TransitionError):
        t.rollback(task)


@pytest.mark.parametrize("bad", ["", "a b", "a\nb", "x" * 201])
def test_bad_ids(bad):
    with pytest.raises(TransitionError):
        make(id=bad)


task_strategy = st.builds(
    lambda rev, status, out: t.Task(id="x", status=status, rev=rev, out=out, assignee="w"),
    st.integers(0, 5), st.sampled_from(t.STATUSES), st.one_of(st.none(), st.binary(max_size=4)))


@given(st.lists(task_strategy, min_size=1, max_size=6), st.randoms())
def test_merge_is_order_independent_and_prefers_rev_then_status(copies, rnd):
    shuffled = list(copies)
    rnd.shuffle(shuffled)
    winner = t.merge(copies)
    assert t.merge(shuffled) == winner
    assert winner.rev == max(c.rev for c in copies)
    top = [c for c in copies if c.rev == winner.rev]
    assert t.STATUS_RANK[winner.status] == max(t.STATUS_RANK[c.status] for c in top)


@given(st.binary(max_size=64))
def test_bytes_view_round_trips(data):
    assert t.view_to_bytes(t.bytes_view(data)) == data
    rec = make().with_(in_=data, out=data).to_record()
    back = t.Task.from_record(rec)
    assert back.in_ == data and back.out == data
