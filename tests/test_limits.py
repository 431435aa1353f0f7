"""Limits per tag across every worker (issue 21): concurrency from the
events file, a sliding-window rate through a kill -9 of the scheduler, the
fair scan past tasks over a limit, and `limit`/`limits`/`stats`/the API."""

import json
import os
import signal

import pytest

from riaktq_cli import limits
from riaktq_cli.api import Queue
from riaktq_cli.assigning import SCAN_MIN, pick_tasks
from riaktq_cli.clock import now_us
from riaktq_cli.errors import BadInput
from riaktq_cli.task import new_task
from tests.conftest import read_events, wait_until

ENDS = ("close", "restart", "rollback", "cancel")


@pytest.fixture
def queue(config_file):
    q = Queue.from_config(str(config_file))
    yield q
    q.close()


def all_done(store, ids):
    return all(t.status == "done" for t in store.get_tasks(ids).values())


def test_rates_and_their_spelling():
    assert limits.parse_rate("10/m") == (10, 60.0)
    assert limits.parse_rate("5/2s") == (5, 2.0)
    assert limits.parse_rate("100/1h") == (100, 3600.0)
    for bad in ("10", "x/m", "10/", "0/m", "10/q", "-1/s", "10/2d"):
        with pytest.raises(BadInput):
            limits.parse_rate(bad)
    assert limits.format_rate(10, 60.0) == "10/m" and limits.format_rate(5, 2.0) == "5/2s"


def test_limit_commands_and_the_api(procs, queue):
    assert procs.run("limit", "--tag", "db", "--concurrency", "2").returncode == 0
    assert queue.limit("api", rate="10/m") == {"db": {"concurrency": 2, "rate": None},
                                               "api": {"concurrency": None, "rate": "10/m"}}
    assert queue.limit("db", rate="5/2s")["db"] == {"concurrency": 2, "rate": "5/2s"}   # the other limit kept
    rows = json.loads(procs.run("limits", "--format", "json").stdout)
    assert [(r["tag"], r["concurrency"], r["rate"], r["in_flight"], r["used"], r["applied"]) for r in rows] == \
        [("api", None, "10/m", 0, 0, False), ("db", 2, "5/2s", 0, 0, False)]
    table = procs.run("limits").stdout.decode()
    assert "not yet applied" in table and "USED IN WINDOW" in table
    stats = procs.run("stats").stdout.decode()
    assert "db: 0/2 in flight, 0 of 5/2s (not yet applied)" in stats
    prometheus = procs.run("stats", "--format", "prometheus").stdout.decode()
    assert 'riaktq_tag_concurrency_limit{tag="db"} 2.0' in prometheus
    assert 'riaktq_tag_rate_limit{tag="api"} 10.0' in prometheus
    cleared = procs.run("limit", "--tag", "db", "--clear")
    assert cleared.returncode == 0 and b"no limit on db" in cleared.stderr
    assert [r["tag"] for r in queue.limits()] == ["api"]
    for bad in (["--tag", "db"], ["--tag", "db", "--rate", "10/q"], ["--tag", "db", "--clear", "--concurrency", "1"],
                ["--tag", "a b", "--concurrency", "1"]):
        result = procs.run("limit", *bad)
        assert result.returncode == 2 and len(result.stderr.decode().strip().splitlines()) == 1, result.stderr


def test_tasks_over_a_limit_do_not_hold_up_the_scan(store):
    """More tasks over the limit than the first pass looks at, ahead of an
    untagged one: the untagged one is picked, and so is the one db task
    the limit still allows."""
    now = now_us()
    store.create_tasks([new_task(f"db-{n:03d}", b"", tags=["db"], priority=5, now=now) for n in range(SCAN_MIN + 20)]
                       + [new_task("plain", b"", now=now)])
    limits.change(store, "db", concurrency=1)
    view = limits.TagLimits(store, "test")
    view.refresh([], now)
    picks = pick_tasks(store, {"w": 4}, {"w": view.offered(["db"])}, view)
    assert sorted(picks) == ["db-000", "plain"]
    limits.change(store, "db", concurrency=0)
    view = limits.TagLimits(store, "test")
    view.refresh([], now)
    assert view.offered(["db", "x"]) == ["x"]    # a tag at its limit is offered to no instance
    assert sorted(pick_tasks(store, {"w": 4}, {"w": view.offered(["db"])}, view)) == ["plain"]


def test_concurrency_across_six_workers(procs, store, queue, tmp_path):
    queue.limit("db", concurrency=2)
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--events", str(events), name="scheduler")
    procs.start("worker", "--handler", "sleep", "--count", "6", "--tag", "db", "--prefix", "w", name="workers")
    wait_until(lambda: len([i for i in range(1, 7) if store.get_record("instance", f"w-{i}")]) == 6, timeout=60,
               message="six workers up")
    db = [f"db-{n:02d}" for n in range(20)]
    plain = [f"plain-{n:02d}" for n in range(20)]
    queue.open_many([{"id": i, "data": "0.3", "tags": ["db"]} for i in db])
    queue.open_many([{"id": i, "data": "0"} for i in plain])
    wait_until(lambda: all_done(store, db + plain), timeout=120, message="all 40 done")

    running, most, order = 0, 0, []
    for event in read_events(events):
        if event["id"].startswith("db-"):
            running += 1 if event["transition"] == "assign" else -1 if event["transition"] in ENDS else 0
            most = max(most, running)
        if event["transition"] == "close":
            order.append(event["id"])
    assert most == 2, f"at most 2 db tasks assigned and unfinished at once, saw {most}"
    assert sorted(i for i in order if i.startswith("db-")) == db
    # the untagged tasks flowed past the db backlog instead of waiting behind it
    assert max(order.index(i) for i in plain) < max(order.index(i) for i in db)


def test_rate_holds_in_every_window_through_a_kill_9(procs, store, queue, tmp_path):
    """5 assigns per 2 s, 15 tasks opened at once, the scheduler killed -9
    right after its first five: its successor knows them."""
    queue.limit("api", rate="5/2s")
    first = procs.start("scheduler", name="scheduler")
    procs.start("worker", "--handler", "echo", "--count", "3", "--tag", "api", "--prefix", "w", name="workers")
    ids = [f"api-{n:02d}" for n in range(15)]
    queue.open_many([{"id": i, "data": "x", "tags": ["api"]} for i in ids])
    wait_until(lambda: sum(t.status != "todo" for t in store.get_tasks(ids).values()) >= 5, timeout=60,
               message="the first five assigned")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    procs.start("scheduler", name="successor")
    wait_until(lambda: all_done(store, ids), timeout=120, message="all 15 done")
    assigns = sorted(entry[0] for task in store.get_tasks(ids).values() for entry in task.history
                     if entry[1] == "assign")
    window = 2_000_000
    crowded = [(assigns[i], assigns[i + 5]) for i in range(len(assigns) - 5) if assigns[i + 5] - assigns[i] < window]
    assert not crowded, f"six assigns within 2 s: {crowded}"
    assert json.loads(procs.run("limits", "--format", "json").stdout)[0]["applied"] is True


def test_a_new_holder_counts_what_its_predecessor_assigned(store):
    """Killed after its assign writes, before it wrote the window down: the
    successor finds the tasks nextup, reads their tags and assign times."""
    from riaktq_cli import task as transitions
    now = now_us()
    store.create_tasks([new_task(f"t{n}", b"", tags=["db"], now=now) for n in range(3)])
    store.update_tasks(["t0", "t1", "t2"], lambda t: transitions.assign(t, "w1"))
    limits.change(store, "db", concurrency=5, rate="4/1h")
    successor = limits.TagLimits(store, "successor")
    successor.refresh(["t0", "t1", "t2"], now_us())
    assert successor._budget == {"db": 1}   # rate 4 - 3 assigned this hour; concurrency 5 - 3 in flight
    successor.refresh(["t0"], now_us())      # t1, t2 finished: no longer in flight, still in the window
    assert successor._budget == {"db": 1}
    limits.change(store, "db", rate="10/1h")
    successor._read_at = None
    successor.refresh(["t0"], now_us())
    assert successor._budget == {"db": 4}   # concurrency 5 - 1 in flight; rate 10 - 3


def test_an_idle_iteration_reads_the_limits_at_most_once_a_second(store, backend, riak_server, monkeypatch):
    """The limits record adds one GET per READ_EVERY to an idle iteration;
    with a limit set, the tasks in flight cost nothing more (their tags are
    known from the assign), and no write happens without an assign."""
    from riaktq_cli import pausing
    from riaktq_cli.events import EventSink
    from riaktq_cli.scheduler import Scheduler
    if backend != "riak" or riak_server is None:
        pytest.skip("counts the requests the Riak test server sees")
    limits.change(store, "db", concurrency=1, rate="5/1h")
    s = Scheduler(store, instance_timeout=120.0, prefetch=1, events=EventSink(None))
    s.iteration()
    s.iteration()   # confirmed the version it applied
    monkeypatch.setattr(pausing, "READ_EVERY", 3600.0)
    monkeypatch.setattr(limits, "READ_EVERY", 3600.0)
    riak_server.reset_counts()
    for _ in range(5):
        s.iteration()
    assert (riak_server.counts["get"], riak_server.counts["put"]) == (0, 0)
    monkeypatch.setattr(limits, "READ_EVERY", 0.0)
    riak_server.reset_counts()
    s.iteration()
    assert (riak_server.counts["get"], riak_server.counts["put"]) == (1, 0)
