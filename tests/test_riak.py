"""What only the Riak store has: siblings, 2i pagination, faults, several nodes.

Fault injection needs the project's Riak test server and is skipped against
a real node (RIAKTQ_TEST_RIAK_URL); everything else runs on both.
"""

import json
import threading
import time
import uuid

import pytest

from riaktq_cli.config import loading as config
from riaktq_cli.core import task as t
from riaktq_cli.core.errors import StoreUnavailable
from riaktq_cli.store import open_store
from tests.conftest import FAST, Processes, add_security, read_events, riak_client, wait_until, write_config


@pytest.fixture
def riak_config(tmp_path, riak_url):
    return write_config(tmp_path / "riaktq.toml", "riak", riak_url, **FAST)


@pytest.fixture
def rstore(riak_config):
    s = open_store(config.load(str(riak_config)))
    yield s
    s.close()


def new(task_id, **kw):
    return t.new_task(task_id, task_id.encode(), now=kw.pop("cat", 1), **kw)


def test_concurrent_blind_writes_make_siblings_that_reads_resolve(rstore, riak_url):
    rstore.create_task(new("x"))
    assigned = t.assign(rstore.get_task("x"), "w1")
    done = t.close(assigned, "w1", "done", b"ok", 1, 2)[0]
    raw = riak_client(riak_url)
    bucket = rstore.bucket("task")
    # two writers that never read: each adds a sibling beside the stored value
    for version in (assigned, done):
        raw.store(rstore.btype, bucket, "x", json.dumps(version.to_record()).encode(), "application/json")
    obj = raw.fetch(rstore.btype, bucket, "x")
    assert len(obj.siblings) == 3
    resolved = rstore.get_task("x")
    assert resolved == done  # highest rev wins
    assert len(raw.fetch(rstore.btype, bucket, "x").siblings) == 1  # written back resolved
    # the indexes follow the resolved value
    assert rstore.nextup_assignees() == []
    assert list(rstore.iter_ids(status="done")) == ["x"]


def test_sibling_storm_loses_no_transition(rstore, fault_server):
    rstore.create_tasks([new(f"s{i}", retry=1) for i in range(20)])
    fault_server.sibling_storm(1000)  # every write with a clock now adds a sibling
    ids = [f"s{i}" for i in range(20)]
    rstore.update_tasks(ids, lambda task: t.assign(task, "w"))
    rstore.update_tasks(ids, lambda task: t.close(task, "w", "failed", b"e1", 1, 1)[0])  # restart
    rstore.update_tasks(ids, lambda task: t.assign(task, "w2"))
    rstore.update_tasks(ids, lambda task: t.close(task, "w2", "done", b"ok", 2, 1)[0])
    fault_server.clear_faults()
    for task in rstore.get_tasks(ids).values():
        assert (task.status, task.rev, task.retry, task.priority, task.out, task.assignee) == \
            ("done", 5, 0, -1, b"ok", "w2")
    for task_id in ids:  # each read wrote back one resolved value
        assert fault_server.sibling_count(rstore.btype, rstore.bucket("task"), task_id) == 1
    assert sorted(rstore.iter_ids(status="done")) == sorted(ids)
    assert rstore.count_by_status()["todo"] == 0


def test_todo_order_comes_from_one_paginated_range_query(rstore, fault_server, monkeypatch):
    from riaktq_cli.store.riak_notes import OpeningNotes
    specs = [(f"p{i:02d}", i % 4 - 1, 100 + (i * 7) % 13) for i in range(45)]
    for i, p, c in specs:   # one by one: a batch would leave a note (see the next test)
        rstore.create_task(new(i, priority=p, cat=c))
    looks = []
    load = OpeningNotes._load
    monkeypatch.setattr(OpeningNotes, "_load", lambda self: (looks.append(1), load(self))[1])
    fault_server.reset_counts()
    got = [task.id for task in rstore.iter_todo(page_size=10)]
    assert got == [i for i, p, c in sorted(specs, key=lambda s: (-s[1], s[2], s[0]))]
    # one query, pages of 10, 20, 40 (the rest); and a look for batch notes
    # (none), again on a later page only if the back-off (50 ms) ran out
    assert looks and fault_server.counts["index"] == 3 + len(looks)
    assert fault_server.counts["get"] == 45   # each task read once
    assert fault_server.counts["list_keys"] == 0



def test_a_batch_open_spares_the_scheduler_a_read_per_task(rstore, riak_config, fault_server):
    rstore.create_tasks([new(f"b{i:02d}", tags=["x"] if i % 5 == 0 else []) for i in range(40)])
    scheduler = open_store(config.load(str(riak_config)))   # another process's view: knows nothing
    try:
        fault_server.reset_counts()
        ids = [task.id for task in scheduler.iter_todo(page_size=40)]
        assert ids == [f"b{i:02d}" for i in range(40)]
        written = scheduler.update_tasks(ids, lambda task: t.assign(task, "w"))
        assert len(written) == 40
        # the note, not the 40 tasks, was read; read once, then deleted
        assert (fault_server.counts["get"], fault_server.counts["put"], fault_server.counts["delete"]) == (1, 40, 1)
        for task in rstore.get_tasks(ids).values():
            assert (task.status, task.assignee, task.rev, task.in_) == ("nextup", "w", 2, task.id.encode())
        assert scheduler.update_tasks(ids, lambda task: t.close(task, "w", "done", b"ok", 1, 1)[0])
        assert rstore.count_by_status()["done"] == 40
    finally:
        scheduler.close()


def test_a_stale_batch_note_loses_no_change(rstore, riak_config):
    """The note's copy of a task is older than the task: deleted, or run by
    someone else meanwhile. The assign made from the copy must not bring the
    deleted task back nor undo the run."""
    ids = [f"n{i}" for i in range(10)]
    rstore.create_tasks([new(i) for i in ids])
    scheduler = open_store(config.load(str(riak_config)))
    try:
        assert [task.id for task in scheduler.iter_todo(page_size=10)] == ids   # copies from the note
        rstore.delete_task("n0")
        rstore.update_tasks(["n1"], lambda task: t.assign(task, "other"))
        rstore.update_tasks(["n1"], lambda task: t.close(task, "other", "done", b"ran", 1, 1)[0])
        written = scheduler.update_tasks(ids, lambda task: t.assign(task, "w"))
        assert sorted(new.id for _, new in written) == ids[2:]
        assert rstore.get_task("n0") is None
        n1 = rstore.get_task("n1")
        assert (n1.status, n1.assignee, n1.out) == ("done", "other", b"ran")
        assert sorted(rstore.nextup_assignees()) == [(i, "w") for i in ids[2:]]
    finally:
        scheduler.close()

def run_tasks(procs, store, tmp_path, n, injector=None, workers=4, timeout=240):
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": f"f{i}", "in": f"v{i}"}) + "\n" for i in range(n)))
    assert procs.run("open", "--batch", str(batch)).returncode == 0
    events = tmp_path / "events.jsonl"
    procs.start("scheduler", "--interval", "100ms", "--prefetch", "4", "--events", str(events), name="sched")
    procs.start("worker", "--handler", "echo", "--count", str(workers), name="workers")
    if injector:
        threading.Thread(target=injector, daemon=True).start()
    def all_done():
        try:
            return store.count_by_status()["done"] == n
        except StoreUnavailable:
            return False  # the test's own reads wait out an outage too
    wait_until(all_done, timeout=timeout, interval=0.5, message=f"{n} done")
    tasks = store.get_tasks([f"f{i}" for i in range(n)])
    assert all(task.out == task.in_ for task in tasks.values()) and len(tasks) == n
    # events are at least once: a repeat of one run's close is one close
    closes = [i for i, _ in {(e["id"], e["run"]) for e in read_events(events) if e["transition"] == "close"}]
    assert sorted(closes) == sorted(tasks), "a task was closed twice or not at all"


def test_faults_during_a_500_task_run_lose_nothing(rstore, riak_config, fault_server, tmp_path):
    procs = Processes(tmp_path, riak_config)
    fault_server.reset_counts()

    def injector():
        for _ in range(6):
            time.sleep(0.8)
            fault_server.fail_next(15, 503)
            time.sleep(0.4)
            fault_server.drop_next(4)
            time.sleep(0.4)
            fault_server.slow_next(2, 2.5)  # past the client's 2s timeout
    try:
        run_tasks(procs, rstore, tmp_path, 500, injector)
    finally:
        procs.cleanup()
    hit = fault_server.counts
    assert hit["status_503"] > 0 and hit["dropped"] > 0 and hit["slowed"] > 0, dict(hit)


def test_two_nodes_one_down_work_goes_on(tmp_path, fault_server):
    from riaktq_testing.riak_sim import RiakTestServer
    second = RiakTestServer(port=0, share_with=fault_server)
    try:
        cfg = write_config(tmp_path / "riaktq.toml", "riak", fault_server.url, **FAST)
        cfg.write_text(cfg.read_text().replace(f'nodes = ["{fault_server.url}"]',
                                               f'nodes = ["{fault_server.url}", "{second.url}"]'))
        store = open_store(config.load(str(cfg)))
        second.set_down(True)
        procs = Processes(tmp_path, cfg)
        try:
            run_tasks(procs, store, tmp_path, 60, workers=2)
        finally:
            procs.cleanup()
            store.close()
    finally:
        second.stop()


def test_all_nodes_down_then_back_everyone_waits_and_resumes(rstore, riak_config, fault_server, tmp_path):
    procs = Processes(tmp_path, riak_config)

    def outage():
        time.sleep(1.0)
        fault_server.set_down(True)
        time.sleep(4.0)
        fault_server.set_down(False)
    try:
        run_tasks(procs, rstore, tmp_path, 150, outage, workers=2)
        assert all(p.poll() is None for p in procs.procs), "a process died during the outage"
        logs = "".join(open(p.log_path, errors="replace").read() for p in procs.procs)
        assert "store unavailable, retrying" in logs
    finally:
        fault_server.set_down(False)
        procs.cleanup()


def test_cli_says_no_node_answered(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(tmp_path / "riaktq.toml", "riak", f"http://127.0.0.1:{port}")
    procs = Processes(tmp_path, cfg)
    result = procs.run("open", "a", "--in", "x")
    err = result.stderr.decode().strip()
    assert result.returncode != 0 and "Traceback" not in err and len(err.splitlines()) == 1
    assert f"riak: no node answered (http://127.0.0.1:{port}: connection refused)" in err


def test_check_reports_each_point(tmp_path, riak_url):
    cfg = write_config(tmp_path / "riaktq.toml", "riak", riak_url)
    procs = Processes(tmp_path, cfg)
    result = procs.run("check")
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "✓ node" in out and "allow_mult=true" in out and "✓ secondary indexes (2i) work" in out
    # a bucket type without allow_mult: the exact commands to fix it
    cfg.write_text(cfg.read_text().replace("[riak]\n", '[riak]\nbucket_type = "default"\n'))
    result = procs.run("check")
    out = result.stdout.decode()
    assert result.returncode == 1 and "✗ bucket type default has allow_mult=false" in out
    assert "riak admin bucket-type create" in out


def test_check_without_2i_backend(tmp_path):
    from riaktq_testing.riak_sim import RiakTestServer
    bitcask = RiakTestServer(port=0, backend_2i=False)
    try:
        cfg = write_config(tmp_path / "riaktq.toml", "riak", bitcask.url)
        result = Processes(tmp_path, cfg).run("check")
        out = result.stdout.decode()
        assert result.returncode == 1 and "✗ secondary indexes" in out and "leveled or leveldb" in out
    finally:
        bitcask.stop()


def test_init_riak_writes_a_working_config(tmp_path, riak_url):
    procs = Processes(tmp_path, tmp_path / "riaktq.toml")
    result = procs.run("init", "--riak", riak_url)
    assert result.returncode == 0
    text = (tmp_path / "riaktq.toml").read_text()
    assert 'backend = "riak"' in text and riak_url in text
    add_security(tmp_path / "riaktq.toml", riak_url)
    assert procs.run("check").returncode == 0


def test_a_foreign_value_under_our_keys_stalls_nothing(rstore, riak_url):
    from riaktq_cli.scheduler.events import EventSink
    from riaktq_cli.scheduler.iteration import Scheduler
    from tests.test_scheduler import instance
    raw = riak_client(riak_url)
    rstore.create_tasks([new("good", cat=2)])
    # somebody else's write: not JSON, but indexed as a todo task ahead of ours
    raw.store(rstore.btype, rstore.bucket("task"), "junk", b"", "text/plain",
              indexes={"todo_bin": "0" * 20 + ":" + "0" * 20 + ":junk", "status_bin": "todo"})
    raw.store(rstore.btype, rstore.bucket("instance"), "ghost", b"{not json", "application/json",
              indexes={"kind_bin": "instance", "written_bin": "instance:" + "9" * 20})
    rstore.put_record("instance", "w", instance("w"))
    summary = Scheduler(rstore, instance_timeout=2.0, prefetch=1, events=EventSink(None)).iteration()
    assert summary["assign"] == 1 and rstore.get_task("good").assignee == "w"
    assert "ghost" not in rstore.list_records("instance")


def test_a_missing_bucket_type_is_told_by_its_type_and_points_to_check(riak_url):
    """The store adds its hint because the client raised RiakNoBucketType
    (HTTP 404 body or PB errmsg), on both APIs -- not because of the text."""
    from riaktq_cli.core.errors import StoreError
    from riaktq_cli.store.riak import RiakStore
    store = RiakStore(riak_client(riak_url, timeout=2.0), bucket_type="no-such-type-" + uuid.uuid4().hex[:6])
    try:
        with pytest.raises(StoreError) as info:
            store.get_task("x")
        assert "does not exist" in str(info.value) and "(see `riaktq check`)" in str(info.value)
    finally:
        store.close()


def test_a_create_error_that_names_exists_is_no_duplicate():
    """Only a conflict (the key exists: RiakConflict) makes a duplicate; any
    other refusal is returned as it is, whatever its text says -- here a
    task id with "exists" in it, echoed by the error."""
    from riaktq_cli.core.errors import DuplicateTask, StoreError
    from riaktq_cli.riak import RiakBadRequest
    from riaktq_cli.store.riak import RiakStore

    class Refusing:
        def store(self, btype, bucket, key, *args, **kwargs):
            raise RiakBadRequest(f"riak: PUT /types/{btype}/buckets/{bucket}/keys/{key}: 400 Bad Request",
                                 status=400)

        def close(self):
            pass

    store = RiakStore(Refusing())
    [result] = store.create_tasks([new("it-exists")])
    assert isinstance(result, StoreError) and not isinstance(result, DuplicateTask)
