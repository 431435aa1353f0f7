"""Nothing acts on a negative read (issue 23, second round), on both stores:
an inbox read empty after a takeover, an instance shielded while its last
record goes stale, a daily purge whose listing came back short."""

import time

import pytest

from riaktq_cli import housekeeping, inbox_reads, protocol
from riaktq_cli.api_input import make_task
from riaktq_cli.clock import now_us, seconds_to_us
from riaktq_cli.events import EventSink
from riaktq_cli.scheduler import Scheduler
from tests.test_housekeeping import finished
from tests.test_node_churn import assigned_to_w1, held, live_record

S = 1_000_000


def reads_empty(store, kind, name):
    """Key reads of one record come back empty (Riak replicas that have not
    caught up) until the returned function is called."""
    plain = store.get_record
    store.get_record = lambda k, n: None if (k, n) == (kind, name) else plain(k, n)
    return lambda: setattr(store, "get_record", plain)


def committed(store, name, task_id):
    """Whether the inbox of `name` lists a result of `task_id` committed."""
    return any(key[0] == task_id for key in store.get_record("inbox", name)["committed"])


def taker(store, timeout=1.0):
    """A scheduler that has just taken the lease over: it reads every inbox afresh."""
    return Scheduler(store, instance_timeout=timeout, prefetch=4, events=EventSink(None))


# --- an inbox read empty ---------------------------------------------------------------

def test_an_inbox_read_empty_after_a_takeover_keeps_its_entries(store):
    assigned_to_w1(store)                  # a and b pending in w1's inbox, seq 1 and 2
    stored = store.get_record("inbox", "w1")
    found_again = reads_empty(store, "inbox", "w1")
    s = taker(store)
    for _ in range(3):
        s.iteration()
    found_again()
    assert held(store) == {("nextup", "w1", 0)}, "pending entries were lost as if w1 had lost them"
    assert store.get_record("inbox", "w1")["entries"] == stored["entries"]
    # read again: w1 goes on where it was, and new work comes after seq 2
    store.put_record("instance", "w1", dict(live_record("w1"), taken=2,
                                            queue=[{"id": "a", "seq": 1, "run": 1}, {"id": "b", "seq": 2, "run": 1}]))
    assert store.create_tasks([make_task("c", b"z")]) == [None]
    assert s.iteration()["assign"] == 1
    assert [(e["id"], e["seq"]) for e in store.get_record("inbox", "w1")["entries"]] == [("c", 3)]


def test_an_inbox_read_empty_is_believed_only_after_a_while(store, monkeypatch):
    """The record says w1 took seq 2 (a at hand, b queued): an empty read
    is retried, then after DOUBT_FOR believed, and the fresh inbox never
    hands out seq 1-2 again."""
    assigned_to_w1(store)
    store.put_record("instance", "w1", dict(live_record("w1"), taken=2, current={"id": "a", "seq": 1, "run": 1,
                                                                               "since": now_us()},
                                            queue=[{"id": "b", "seq": 2, "run": 1}]))
    clock = [now_us()]
    monkeypatch.setattr("riaktq_cli.scheduler.now_us", lambda: clock[0])
    found_again = reads_empty(store, "inbox", "w1")
    s = taker(store, timeout=3600.0)
    assert store.create_tasks([make_task("c", b"z")]) == [None]
    assert s.iteration()["assign"] == 0, "work handed out on an inbox that was not read"
    clock[0] += seconds_to_us(inbox_reads.DOUBT_FOR) - 1
    assert s.iteration()["assign"] == 0
    clock[0] += 2
    assert s.iteration()["assign"] == 1
    found_again()
    assert [(e["id"], e["seq"]) for e in store.get_record("inbox", "w1")["entries"]] == [("c", 3)]
    assert held(store) == {("nextup", "w1", 0)}


@pytest.mark.parametrize("backend", ["riak"])
def test_a_riak_not_found_for_an_inbox_loses_nothing(fault_server, store, caplog):
    """The same on the wire: Riak's own 404 (`not found`) for the inbox key,
    as replicas that have not caught up answer it."""
    assigned_to_w1(store)
    plain, armed = store.get_record, []

    def get_record(kind, name):
        if (kind, name) == ("inbox", "w1") and not armed:
            armed.append(fault_server.fail_next(1, 404, "not found\n", kinds="get"))
        return plain(kind, name)
    store.get_record = get_record
    s = taker(store)
    s.iteration()
    assert armed and "inbox of w1 read empty" in caplog.text
    store.get_record = plain
    assert held(store) == {("nextup", "w1", 0)}
    assert [e["id"] for e in store.get_record("inbox", "w1")["entries"]] == ["a", "b"]
    s.iteration()   # read again, found: nothing changes
    assert held(store) == {("nextup", "w1", 0)}
    assert [e["id"] for e in store.get_record("inbox", "w1")["entries"]] == ["a", "b"]


# --- a shielded instance whose last record goes stale -----------------------------------

def test_a_shielded_instance_keeps_its_pending_entries_until_it_is_gone(store, monkeypatch):
    """Missing from listing and key read alike, w1 is shielded for the
    instance timeout: alive for what it holds, though its last seen record
    goes stale before the shield ends; then gone, entries and tasks
    together, and what it had not taken costs no attempt."""
    timeout = 2.0
    clock = [now_us()]
    monkeypatch.setattr("riaktq_cli.scheduler.now_us", lambda: clock[0])
    s = assigned_to_w1(store, timeout=timeout)
    start, timeout_us = clock[0], seconds_to_us(timeout)
    store.delete_record("instance", "w1")        # its heartbeats no read finds
    clock[0] = start + timeout_us // 2
    s.iteration()                                # first missed: shielded
    clock[0] = start + timeout_us * 6 // 5
    s.iteration()                                # its last record is stale now; still shielded
    assert [e["id"] for e in store.get_record("inbox", "w1")["entries"]] == ["a", "b"], \
        "a shielded instance's pending entries were withdrawn"
    assert held(store) == {("nextup", "w1", 0)}
    clock[0] = start + timeout_us * 8 // 5
    s.iteration()                                # unseen for the timeout: gone
    assert store.get_record("inbox", "w1")["entries"] == []
    assert held(store) == {("todo", None, 0)}


# --- keep_finished's daily purge on a short listing ------------------------------------

def test_a_purge_pass_on_listings_that_may_be_partial_does_not_end_the_day(store):
    old = finished(store, [f"o{i}" for i in range(5)], age_s=120)
    plain_ids = store.iter_ids
    store.iter_ids = lambda status=None, **kw: (i for i in plain_ids(status=status, **kw) if i not in ("o3", "o4"))
    asked = []
    store.listings_partial = lambda: asked.append(1) or "the Riak cluster is catching up"
    purge = housekeeping.DailyPurge(store, keep_finished=60.0)
    purge.recheck_us = S                     # (RECHECK: 300 s)
    now = now_us()
    assert [purge.step(now, lambda: None) for _ in range(5)] == [3, 0, 0, 0, 0]
    assert store.get_record("scheduler", housekeeping.RECORD) is None, "the day was marked done on a short listing"
    assert len(asked) == 1, "the store was asked more than once per pass"
    del store.iter_ids, store.listings_partial      # settled: whole listings again
    assert purge.step(now + S - 1, lambda: None) == 0                 # the next pass waits its turn
    assert [purge.step(now + S, lambda: None) for _ in range(4)] == [2, 0, 0, 0]
    assert store.get_tasks(old) == {}
    assert store.get_record("scheduler", housekeeping.RECORD) == {"day": housekeeping.utc_day(now + S)}


@pytest.mark.parametrize("backend", ["riak"])
def test_a_purge_after_a_rejoin_waits_for_the_handoff(fault_server, store):
    """The Riak test server's rejoin: 2i leaves out the tasks written since
    the node went down, and its /stats shows the handoff in flight."""
    finished(store, ["before-1", "before-2"], age_s=120)
    fault_server.rejoin(60.0, since=time.time())
    finished(store, ["during-1", "during-2"], age_s=120)
    purge = housekeeping.DailyPurge(store, keep_finished=60.0)
    purge.recheck_us = S
    now = now_us()
    assert [purge.step(now, lambda: None) for _ in range(3)] == [2, 0, 0]
    assert store.get_record("scheduler", housekeeping.RECORD) is None
    fault_server.settle()
    assert [purge.step(now + S, lambda: None) for _ in range(3)] == [2, 0, 0]
    assert store.get_tasks(["during-1", "during-2"]) == {}
    assert store.get_record("scheduler", housekeeping.RECORD) == {"day": housekeeping.utc_day(now + S)}


# --- the pause record read empty -------------------------------------------------------

def test_a_pause_read_empty_keeps_assignment_paused(store, monkeypatch):
    """The pause record is never deleted and its version only grows: read
    empty (or older), it is a read that missed, no resume."""
    from riaktq_cli import pausing
    monkeypatch.setattr(pausing, "READ_EVERY", 0.0)
    pausing.change(store, True)
    assert store.create_tasks([make_task("a", b"x")]) == [None]
    store.put_record("instance", "w1", live_record("w1"))
    s = taker(store)
    assert s.iteration()["assign"] == 0
    found_again = reads_empty(store, "scheduler", "pause")
    assert s.iteration()["assign"] == 0, "a pause read empty resumed assignment"
    found_again()
    pausing.change(store, False)
    assert s.iteration()["assign"] == 1


# --- a result whose task read came back empty ------------------------------------------

def test_a_result_whose_task_reads_empty_is_not_committed(store):
    """The commit reads the task; found nothing although the nextup listing
    names it: the result stays in the outbox (not listed committed, which
    would make the worker drop it) and is committed once a read finds it."""
    assigned_to_w1(store)
    entry_a = next(e for e in store.get_record("inbox", "w1")["entries"] if e["id"] == "a")
    result = protocol.make_result(entry_a, "done", b"ran once", now_us(), 7)
    store.put_record("instance", "w1", dict(live_record("w1"), taken=2, outbox=[result],
                                            queue=[{"id": "b", "seq": 2, "run": 1}]))
    plain = store.update_tasks
    store.update_tasks = lambda ids, change: plain(ids, lambda t: None if t.id == "a" else change(t))
    s = taker(store)
    s.iteration()
    assert not committed(store, "w1", "a"), "a result was dropped on a read that missed"
    assert store.get_task("a").status == "nextup"
    del store.update_tasks
    s.iteration()
    task = store.get_task("a")
    assert (task.status, task.out, task.lost) == ("done", b"ran once", 0)
    assert committed(store, "w1", "a")
