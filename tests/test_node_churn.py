"""A Riak node that stops or rejoins never fails, repeats or refuses work
(issue 23): the scheduler never destroys on a negative read, and the
records it acts on absence of are read by key first."""

import time

import pytest

from riaktq_cli import forgetting, protocol, task as T
from riaktq_cli.api_input import make_task
from riaktq_cli.clock import now_us
from riaktq_cli.events import EventSink
from riaktq_cli.scheduler import Scheduler


def live_record(name):
    return {"name": name, "tags": [], "heartbeat": now_us(), "status": "idle", "taken": 0, "queue": [],
            "current": None, "outbox": [], "token": f"tok-{name}"}


def assigned_to_w1(store, timeout=1.0):
    """Tasks a and b assigned to the live instance w1 by one iteration."""
    assert store.create_tasks([make_task("a", b"x"), make_task("b", b"y")]) == [None, None]
    store.put_record("instance", "w1", live_record("w1"))
    s = Scheduler(store, instance_timeout=timeout, prefetch=2, events=EventSink(None))
    assert s.iteration()["assign"] == 2
    return s


def held(store):
    tasks = store.get_tasks(["a", "b"])
    return {(t.status, t.assignee, t.lost) for t in tasks.values()}


def test_an_instance_missing_from_a_listing_keeps_its_tasks(store):
    s = assigned_to_w1(store, timeout=0.5)
    listed = store.list_records

    def short_listing(kind):   # what a rejoining Riak node answered
        records = listed(kind)
        return {n: r for n, r in records.items() if n != "w1"} if kind == "instance" else records
    store.list_records = short_listing
    store.put_record("instance", "w1", live_record("w1"))
    s.iteration()
    assert held(store) == {("nextup", "w1", 0)}, "a live instance was judged lost from a listing"
    # Gone for real (not found by key either): its tasks go back only once
    # it has been unseen for the instance timeout, and count as lost then.
    store.delete_record("instance", "w1")
    s.iteration()
    assert held(store) == {("nextup", "w1", 0)}
    time.sleep(0.6)
    s.iteration()
    assert held(store) == {("todo", None, 1)}


def test_the_forgetter_deletes_nothing_on_a_read_that_comes_back_empty(store):
    gone = dict(live_record("old"), heartbeat=now_us() - 3600 * 1_000_000, status="stopped")
    store.put_record("instance", "old", gone)
    store.put_record("inbox", "old", protocol.empty_inbox())
    plain = store.get_record
    store.get_record = lambda kind, name: None if kind == "instance" else plain(kind, name)
    assert forgetting.delete(store, "old", gone) is False
    store.get_record = plain
    assert store.get_record("inbox", "old") is not None and store.get_record("instance", "old") is not None
    assert forgetting.delete(store, "old", gone) is True


@pytest.mark.parametrize("backend", ["riak"])
def test_rejoining_node_hides_the_instance_from_2i_and_nothing_is_rolled_back(fault_server, config_file):
    """The Riak test server's handoff fault: 2i leaves out what was written
    since the node went down; a GET still finds it."""
    from riaktq_cli import config
    from riaktq_cli.store import open_store
    store = open_store(config.load(str(config_file)))
    try:
        s = assigned_to_w1(store, timeout=5.0)
        fault_server.rejoin(30.0, since=time.time())
        store.put_record("instance", "w1", live_record("w1"))    # its next heartbeat
        assert "w1" not in store.list_records("instance"), "the fault did not hide the record"
        s.iteration()
        assert held(store) == {("nextup", "w1", 0)}
    finally:
        fault_server.settle()
        store.close()
