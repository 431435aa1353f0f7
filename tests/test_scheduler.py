"""Scheduler iterations against hand-written instance records (both stores).

These pin down the protocol of DESIGN §2 step by step without processes:
the lifecycle tests run the same paths end to end.
"""

from riaktq_cli.core import protocol, task as t
from riaktq_cli.core.clock import now_us
from riaktq_cli.scheduler.events import EventSink
from riaktq_cli.scheduler.iteration import Scheduler
from tests.conftest import take_lease


def instance(name, tags=(), taken=0, queue=(), current=None, outbox=(), heartbeat=None, status="idle"):
    return {"name": name, "tags": list(tags), "heartbeat": heartbeat or now_us(), "status": status,
            "taken": taken, "queue": list(queue), "current": current, "outbox": list(outbox)}


def scheduler(store, prefetch=1):
    return Scheduler(store, instance_timeout=2.0, prefetch=prefetch, events=EventSink(None))


def open_tasks(store, *specs):
    store.create_tasks([t.new_task(i, i.encode(), priority=p, tags=tags, now=c) for i, p, c, tags in specs])


def test_assign_honours_priority_prefetch_and_tags(store):
    open_tasks(store, ("low", 0, 1, ()), ("high", 5, 2, ()), ("gpu", 9, 3, ("gpu",)), ("mid", 1, 4, ()))
    store.put_record("instance", "cpu-1", instance("cpu-1"))
    s = scheduler(store, prefetch=2)
    summary = s.iteration()
    assert summary["assign"] == 2
    inbox = store.get_record("inbox", "cpu-1")
    assert [e["id"] for e in inbox["entries"]] == ["high", "mid"]
    assert [e["seq"] for e in inbox["entries"]] == [1, 2]
    assert store.get_task("gpu").status == "todo"  # no instance offers gpu: it waits
    assert s.iteration()["assign"] == 0  # queue full at prefetch 2

    store.put_record("instance", "gpu-1", instance("gpu-1", tags=["gpu", "cuda"]))
    s.iteration()
    assert store.get_task("gpu").assignee == "gpu-1"


def test_commit_closes_restarts_and_lists_committed(store):
    open_tasks(store, ("ok", 0, 1, ()), ("bad", 0, 2, ()))
    store.update_tasks(["bad"], lambda task: task.with_(retry=1))
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store, prefetch=2)
    s.iteration()
    entries = store.get_record("inbox", "w")["entries"]
    results = [protocol.make_result(entries[0], "done", b"OK", 10, 5),
               protocol.make_result(entries[1], "failed", b"ValueError: no", 11, 5)]
    store.put_record("instance", "w", instance("w", taken=2, outbox=results))
    summary = s.iteration()
    assert (summary["commit"], summary["restart"]) == (1, 1)
    ok, bad = store.get_task("ok"), store.get_task("bad")
    assert (ok.status, ok.out, ok.assignee) == ("done", b"OK", "w")
    # restarted, then assigned again in the same iteration (the slot is free)
    assert (bad.retry, bad.priority, bad.out) == (0, -1, b"ValueError: no")
    inbox = store.get_record("inbox", "w")
    # committed results are keyed by (id, run, incarnation): each task's first run
    assert sorted(tuple(k[:2]) for k in inbox["committed"]) == [("bad", 1), ("ok", 1)]
    assert {k[2] for k in inbox["committed"]} == {ok.inc, bad.inc}
    # a second look at the same outbox commits nothing twice
    assert s.iteration()["commit"] == 0 and store.get_task("ok").rev == ok.rev


def test_result_of_a_task_no_longer_held_is_dropped_silently(store):
    open_tasks(store, ("a", 0, 1, ()))
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    entry = store.get_record("inbox", "w")["entries"][0]
    store.delete_task("a")
    store.put_record("instance", "w", instance("w", taken=1, outbox=[protocol.make_result(entry, "done", b"", 1, 1)]))
    assert s.iteration()["commit"] == 0
    assert store.get_record("inbox", "w")["committed"] == [["a", 1, entry["inc"]]]


def test_rollback_when_instance_lost_or_not_holding(store):
    open_tasks(store, ("a", 0, 1, ()), ("b", 0, 2, ()))
    store.put_record("instance", "w1", instance("w1"))
    store.put_record("instance", "w2", instance("w2"))
    s = scheduler(store)
    s.iteration()
    holder = {task_id: store.get_task(task_id).assignee for task_id in "ab"}
    assert sorted(holder.values()) == ["w1", "w2"]
    keeper, lost = holder["a"], holder["b"]
    # the holder of a took it into its queue and heartbeats; b's holder died
    store.put_record("instance", keeper, instance(keeper, taken=1, queue=[{"id": "a", "seq": 1}]))
    store.put_record("instance", lost, instance(lost, taken=1, queue=[{"id": "b", "seq": 1}],
                                                heartbeat=now_us() - 5_000_000))
    assert s.iteration()["rollback"] == 1
    assert store.get_task("b").status == "todo" and store.get_task("b").assignee is None
    assert store.get_task("a").status == "nextup"
    assert store.get_record("inbox", lost)["entries"] == []
    # an instance that restarted and forgot its queue no longer holds its task
    store.put_record("instance", keeper, instance(keeper, taken=1))
    summary = s.iteration()
    assert summary["rollback"] == 1
    # both are todo again and the live keeper (prefetch 1) was given the first in order
    assert store.get_task("a").assignee in (None, keeper)


def test_stopped_instance_is_not_live(store):
    open_tasks(store, ("a", 0, 1, ()))
    store.put_record("instance", "w", instance("w", status="stopped"))
    assert scheduler(store).iteration()["assign"] == 0


def test_same_task_rerun_on_same_instance_is_committed_again(store):
    """Results are keyed by (id, run): a restart's second run is not mistaken
    for the first, already committed one."""
    open_tasks(store, ("a", 0, 1, ()))
    store.update_tasks(["a"], lambda task: task.with_(retry=1))
    store.put_record("instance", "w", instance("w"))
    s = scheduler(store)
    s.iteration()
    e1 = store.get_record("inbox", "w")["entries"][0]
    store.put_record("instance", "w", instance("w", taken=1, outbox=[protocol.make_result(e1, "failed", b"x", 1, 1)]))
    s.iteration()  # restart, then assigned again with seq 2
    e2 = store.get_record("inbox", "w")["entries"][-1]
    assert (e2["id"], e2["seq"]) == ("a", 2)
    store.put_record("instance", "w", instance("w", taken=2, outbox=[
        protocol.make_result(e1, "failed", b"x", 1, 1), protocol.make_result(e2, "done", b"y", 2, 1)]))
    s.iteration()
    assert store.get_task("a").status == "done" and store.get_task("a").out == b"y"


def test_lease_keeps_a_second_scheduler_standing_by(store):
    import threading
    first = scheduler(store)
    first.owner = "first"
    second = scheduler(store)
    second.owner = "second"
    held, _ = take_lease(store, "first", 10_000_000, now_us())
    assert held
    assert second.run(interval=0.05, stop=threading.Event(), once=True) is False


def test_only_the_assignees_result_is_committed(store):
    """A task rolled back from an instance presumed dead and run again
    elsewhere: both results reach outboxes; the assignee's is committed and
    the other is dropped, whichever instance record is read first."""
    open_tasks(store, ("a", 0, 1, ()))
    store.put_record("instance", "old", instance("old"))
    s = scheduler(store)
    s.iteration()
    first = store.get_record("inbox", "old")["entries"][0]
    store.put_record("instance", "old", instance("old", taken=1, queue=[{"id": "a", "seq": 1}],
                                                heartbeat=now_us() - 5_000_000))
    store.put_record("instance", "new", instance("new"))
    s.iteration()  # rollback from old
    s.iteration()  # assigned to new
    assert store.get_task("a").assignee == "new"
    second = store.get_record("inbox", "new")["entries"][0]
    for name in ("new", "old"):  # both finished: old came back late
        entry = second if name == "new" else first
        store.put_record("instance", name, instance(name, taken=1, outbox=[
            protocol.make_result(entry, "done", name.encode(), 1, 1)]))
    s.iteration()
    task = store.get_task("a")
    assert (task.status, task.out, task.assignee) == ("done", b"new", "new")
    assert store.get_record("inbox", "old")["committed"] == [["a", 1, task.inc]]


class FlakyWrites:
    """A store whose next batch write lands completely but reports one task
    as failed -- what a Riak write that timed out after being applied does."""

    def __init__(self, store):
        self._store = store
        self.flaky_next = False

    def __getattr__(self, name):
        return getattr(self._store, name)

    def update_tasks(self, task_ids, change):
        from riaktq_cli.core.errors import PartialUpdate
        written = self._store.update_tasks(task_ids, change)
        if self.flaky_next and written:
            self.flaky_next = False
            lost = written[-1][1].id
            raise PartialUpdate("1 write timed out", written[:-1], [lost])
        return written


def test_a_close_whose_answer_was_lost_is_recognized_once(store):
    events = []
    open_tasks(store, ("a", 0, 1, ()), ("b", 0, 2, ()))
    flaky = FlakyWrites(store)
    s = Scheduler(flaky, instance_timeout=2.0, prefetch=2, events=EventSink(None))
    s.events.emit = lambda kind, task, **kw: events.append((kind, task.id))
    store.put_record("instance", "w", instance("w"))
    s.iteration()
    entries = store.get_record("inbox", "w")["entries"]
    store.put_record("instance", "w", instance("w", taken=2, outbox=[
        protocol.make_result(e, "done", b"ok", 10 + e["seq"], 5) for e in entries]))
    flaky.flaky_next = True
    s.iteration()
    closes = [i for k, i in events if k == "close"]
    assert len(closes) == 1 and store.get_task("a").status == store.get_task("b").status == "done"
    unsure = "b" if closes == ["a"] else "a"
    assert [unsure, 1] not in store.get_record("inbox", "w")["committed"]
    s.iteration()  # the unconfirmed close is recognized: its event now, once
    assert sorted(i for k, i in events if k == "close") == ["a", "b"]
    assert len(store.get_record("inbox", "w")["committed"]) == 2
    s.iteration()
    assert sorted(i for k, i in events if k == "close") == ["a", "b"]
