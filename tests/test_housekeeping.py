"""`[scheduler] keep_finished`: the scheduler's daily purge (issue 10), on both stores.

Finished tasks created longer ago than keep_finished go, a batch per
iteration; todo tasks and newer ones stay; the day's purge is recorded in
the store, so a scheduler killed with -9 in the middle is followed by one
that carries on, and a purge that completed is not repeated that day.
"""

import os
import signal

import pytest

from riaktq_cli.config import loading as config
from riaktq_cli.core import task as T
from riaktq_cli.api.inputs import make_task
from riaktq_cli.core.clock import now_us
from riaktq_cli.scheduler.housekeeping import RECORD, DailyPurge, utc_day
from riaktq_cli.store import open_store
from tests.conftest import Processes, wait_until, write_config

S = 1_000_000


def finished(store, ids, age_s, status=T.DONE):
    tasks = [make_task(i, b"x", now=now_us() - age_s * S) for i in ids]
    for start in range(0, len(tasks), 200):
        assert store.create_tasks(tasks[start:start + 200]) == [None] * len(tasks[start:start + 200])

    def run(task):
        return T.close(T.assign(task, "w"), "w", status, b"ok", now_us(), 5)[0]
    assert len(store.update_tasks(ids, run)) == len(ids)
    return ids


def counts(store):
    return store.count_by_status()


@pytest.fixture
def keeping(tmp_path, backend, request):
    """(procs, store) on a config with [scheduler] keep_finished = "2s"."""
    url = request.getfixturevalue("riak_url") if backend == "riak" else None
    path = write_config(tmp_path / "riaktq.toml", backend, url,
                        scheduler={"interval": "100ms", "instance_timeout": "2s", "keep_finished": "2s"},
                        worker={"heartbeat": "200ms", "poll": "50ms"})
    procs, store = Processes(tmp_path, path), open_store(config.load(str(path)))
    yield procs, store
    procs.cleanup()
    store.close()


def test_keep_finished_purges_old_finished_tasks_once_a_day(keeping):
    procs, store = keeping
    finished(store, [f"d{i:03d}" for i in range(450)], age_s=60)
    finished(store, [f"f{i:03d}" for i in range(30)], age_s=60, status=T.FAILED)
    store.create_tasks([make_task("old-todo", b"x", now=now_us() - 60 * S, tags=["nobody"])])
    first = procs.start("scheduler", name="s1")
    # kill -9 once it has begun (in the middle, unless it was quicker): the next one carries on
    wait_until(lambda: counts(store)["done"] < 450, message="purge begun")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    procs.start("scheduler", name="s2")
    wait_until(lambda: (store.get_record("scheduler", RECORD) or {}).get("day") == utc_day(now_us()),
               timeout=60, message="today's purge done")
    assert counts(store) == {"todo": 1, "nextup": 0, "done": 0, "failed": 0}
    finished(store, ["after"], age_s=60)              # finished after today's purge: waits for tomorrow
    procs.start("worker", "--handler", "echo", "--name", "e", name="e")
    assert procs.run("open", "ping", "--in", "x", "--wait", "--timeout", "60s").returncode == 0  # iterations ran
    assert store.get_task("after").status == "done"


def test_a_purge_goes_a_batch_per_iteration_and_resumes_after_a_kill(store):
    old = finished(store, [f"o{i:03d}" for i in range(120)], age_s=120)
    young = finished(store, ["young"], age_s=0)
    purge = DailyPurge(store, keep_finished=60.0, batch=50)
    now = now_us()
    assert purge.step(now, lambda: None) == 50                       # one batch, no more
    assert len(store.get_tasks(old)) == 70
    # killed: nothing of it but the store remains; a new scheduler carries on
    again = DailyPurge(store, keep_finished=60.0, batch=50)
    steps = [again.step(now, lambda: None) for _ in range(6)]
    assert steps == [50, 20, 0, 0, 0, 0]                            # done (and for the failed), then idle
    assert store.get_tasks(old) == {} and set(store.get_tasks(young)) == {"young"}
    assert store.get_record("scheduler", RECORD) == {"day": utc_day(now)}
    assert DailyPurge(store, 60.0).step(now, lambda: None) == 0     # today is done, for any later scheduler
    assert DailyPurge(store, None).step(now + 86400 * S, lambda: None) == 0   # off: never


def test_a_purge_writes_nothing_without_the_lease(store):
    finished(store, ["gone-not"], age_s=120)

    def lost():
        raise RuntimeError("lease lost")
    with pytest.raises(RuntimeError):
        DailyPurge(store, 60.0).step(now_us(), lost)
    assert store.get_task("gone-not") is not None
