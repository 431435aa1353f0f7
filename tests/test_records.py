"""The typed protocol records (records.py): each reads back exactly the dict
riaktq writes today (a worker and a scheduler of different releases share
the store during an upgrade), and an old record without the newer keys
loads with their defaults."""

import json

import pytest

from riaktq_cli.core import records as r
from riaktq_cli.core.task import new_task

ENTRY = {"seq": 3, "id": "t1", "run": 2, "inc": "ab12", "in": "aGk=", "tags": ["gpu"], "time_limit": 5.0}
RESULT = {"id": "t1", "run": 2, "inc": "ab12", "seq": 3, "status": "done", "out": "T0s=", "sat": 10, "laf": 4}
INSTANCE = {
    "name": "w", "token": "tok", "handler": "h:mod", "tags": ["gpu"], "host": "box", "pid": 42, "started": 1,
    "heartbeat": 99, "status": "busy", "taken": 3, "epoch": 7,
    "queue": [{"id": "t2", "seq": 2, "run": 1, "inc": None}],
    "current": {"id": "t1", "seq": 3, "run": 2, "inc": "ab12", "since": 50},
    "outbox": [RESULT], "replaces": None,
}
INBOX = {"seq": 4, "epoch": 7, "token": "tok", "entries": [ENTRY], "committed": [["t0", 1, "cd34"]],
         "cancel": [["t1", 2, 3]]}

ROUND_TRIPS = [
    (r.Entry.from_dict, ENTRY),
    (r.Result.from_dict, RESULT),
    (r.Instance.from_dict, INSTANCE),
    (r.Instance.from_dict, dict(INSTANCE, handover_of="w", log_lost=3, replaces="old")),
    (r.Instance.from_dict, dict(INSTANCE, current=None, queue=[], outbox=[])),
    (r.Inbox.from_dict, INBOX),
    (r.LeaseCopy.from_dict, {"owner": "me", "expires": 10, "since": 5, "epoch": 2}),
    (r.Pause.from_dict, {"all": False, "tags": ["db"], "since": 5, "by": "u@h", "version": 6}),
    (r.Applied.from_dict, {"version": 6, "owner": "me", "at": 9}),
    (r.SchedulerSettings.from_dict, {"owner": "me", "instance_timeout": 30.0, "interval": 0.5, "prefetch": "auto",
                                     "since": 9}),
    (r.Limits.from_dict, {"tags": {"api": {"concurrency": None, "rate": [10, 60.0]},
                                   "db": {"concurrency": 2, "rate": None}}, "version": 3, "by": "u@h", "since": 2}),
    (r.LimitsUsed.from_dict, {"tags": {"api": [1, 2, 3]}, "at": 4}),
    (r.ScheduleSlots.from_dict, {"covered": 100, "slot": 90, "id": "s@x", "at": 101}),
    (r.ScheduleSlots.from_dict, {"covered": 100, "slot": None, "id": None, "at": 100}),
]


@pytest.mark.parametrize("load,doc", ROUND_TRIPS, ids=[f"{i}-{load.__qualname__.split('.')[0]}"
                                                       for i, (load, doc) in enumerate(ROUND_TRIPS)])
def test_every_record_reads_back_what_it_wrote(load, doc):
    stored = json.loads(json.dumps(doc))      # what the store hands back
    assert load(stored).to_dict() == doc


def test_old_records_without_newer_keys_load_with_defaults():
    entry = r.Entry.from_dict({"seq": 1, "id": "a", "in": "", "tags": [], "time_limit": None})
    assert (entry.run, entry.inc, entry.key) == (0, None, ("a", 0, None))
    result = r.Result.from_dict({"id": "a", "seq": 1, "status": "done", "out": "", "sat": 1, "laf": 1})
    assert result.key == ("a", 0, None)
    old = r.Instance.from_dict({"name": "w", "heartbeat": 5, "status": "idle", "taken": 1,
                                "queue": [{"id": "q", "seq": 1}], "current": None, "outbox": []})
    assert (old.token, old.epoch, old.replaces, old.handover_of, old.log_lost) == (None, 0, None, None, 0)
    assert old.queue[0].key == ("q", 0, None)
    # an inbox from before the cancel list and the incarnation stamps
    inbox = r.Inbox.from_dict({"seq": 2, "token": None, "entries": [], "committed": [["a", 1]]})
    assert inbox.committed_keys() == {("a", 1, None)} and inbox.cancel == [] and inbox.epoch == 0
    assert r.Inbox.from_dict(None) == r.Inbox()
    assert r.Inbox().to_dict() == {"seq": 0, "epoch": 0, "token": None, "entries": [], "committed": [], "cancel": []}
    assert r.LeaseCopy.from_dict({"owner": "me", "expires": 3}) == r.LeaseCopy("me", 3, 0, 0)
    assert r.LeaseCopy.from_dict({"owner": "me"}) is None
    assert r.Pause.from_dict(None) == r.Pause() and not r.Pause().paused
    assert r.SchedulerSettings.from_dict({"owner": "x"}) is None
    assert r.ScheduleSlots.from_dict(None) is None
    assert r.Limits.from_dict({"tags": {"db": {"concurrency": None, "rate": None}}}).tags == {}


def test_entry_and_result_carry_the_run_they_came_from():
    task = new_task("t", b"payload", tags=("gpu",), now=1)
    entry = r.Entry.of(7, task)
    assert entry.input == b"payload" and entry.key == (task.id, task.run, task.inc)
    result = r.Result.of(entry, r.CRASHED, b"killed", 2, 3)
    assert (result.key, result.seq, result.output) == (entry.key, 7, b"killed")


def test_the_queries_on_instance_and_inbox():
    instance = r.Instance.from_dict(INSTANCE)
    inbox = r.Inbox.from_dict(dict(INBOX, entries=[ENTRY, dict(ENTRY, seq=4, id="t4")]))
    assert instance.is_live(100, 10) and not instance.is_live(200, 10)
    assert not r.Instance.from_dict(dict(INSTANCE, status="stopped")).is_live(99, 10)
    assert instance.gone_for(100, 10) is None and instance.gone_for(200, 10) == 91
    assert r.Instance.from_dict(dict(INSTANCE, status="stopped")).gone_for(200, 10) == 101
    assert [e.id for e in inbox.pending(instance)] == ["t4"]            # seq 3 is taken
    assert inbox.unstarted_runs(instance) == {("t4", 2, "ab12"), ("t2", 1, None)}
    assert inbox.held_task_ids(instance) == {"t4", "t2", "t1"}
    assert inbox.queue_length(instance) == 3
    assert instance.held_runs() == {("t2", 1), ("t1", 2)}
    assert instance.uncommitted(inbox) == instance.outbox
    assert instance.uncommitted(r.Inbox(committed=[RESULT_KEY])) == []
    instances, handovers = r.split_handovers({"w": INSTANCE, "w~x": dict(INSTANCE, handover_of="w")})
    assert list(instances) == ["w"] and handovers["w~x"].handover_of == "w"


RESULT_KEY = ("t1", 2, "ab12")


def test_one_lease_rule_decides_which_copy_holds_and_which_one_is_released():
    """The stores hand over every document under the lease key as it is
    (siblings on Riak); lease.py alone says which are copies, which holds
    the lease (winner) and what letting go writes (released): both by one
    ranking, LeaseCopy.rank."""
    from riaktq_cli.scheduler.lease import decide, released, winner
    mine = {"owner": "a", "expires": 1_000, "since": 10, "epoch": 5}
    stale = {"owner": "b", "expires": 50, "since": 20, "epoch": 6}     # expired, the highest epoch
    junk = [["not", "a", "copy"], "text", {"owner": "c"}]
    assert winner(junk + [mine, stale], now=100) == mine
    assert decide(junk + [stale], "c", 100, 10)[1]["epoch"] == 7
    assert released(junk + [mine, stale], "b") == dict(stale, expires=0)   # the epoch is kept
    assert released(junk + [mine, stale], "a") is None
    assert released([dict(mine, expires=50)], "a") == dict(mine, expires=0)   # after its term too
