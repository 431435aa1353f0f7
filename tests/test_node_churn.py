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
    # it has been unseen for the instance timeout, as a lost instance's --
    # pending in its inbox (its last record took none), they cost no attempt.
    store.delete_record("instance", "w1")
    s.iteration()
    assert held(store) == {("nextup", "w1", 0)}
    time.sleep(0.6)
    s.iteration()
    assert held(store) == {("todo", None, 0)}


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


def test_a_batch_opened_while_a_node_stops_opens_every_line_and_loses_nothing(fault_server, tmp_path):
    """Issue 23's run, smaller: three nodes, one stopping (webmachine's 404
    page, then refused) during `open --batch` and coming back with a
    handoff; max_attempts 1, instance timeout 3 s. scripts/node_stop.py runs
    it with 2,000 tasks."""
    from riaktq_testing.riak_sim import RiakTestServer
    from scripts.node_stop import scenario
    others = [RiakTestServer(port=0, share_with=fault_server) for _ in range(2)]
    try:
        figures = scenario(tmp_path, [fault_server, *others], others[1], tasks=300, workers=2, timeout=120)
    finally:
        for server in others:
            server.stop()
    assert figures["stopping_answers"] > 0, "the node never answered while stopping"
    assert figures["open_exit"] == 0 and figures["opened"] == 300, figures
    assert (figures["failed"], figures["assigned_twice"], figures["unfinished"]) == (0, 0, 0), figures
    assert figures["daemons_alive"], figures


def test_a_stopping_node_is_skipped_and_alone_it_is_unavailable(fault_server):
    """Its 404 page is no "not found": the request goes to another node,
    and with none left the call says no node answered (exit 3)."""
    from riaktq_cli.riak import RiakClient, RiakError, RiakUnavailable
    from riaktq_testing.riak_sim import RiakTestServer
    other = RiakTestServer(port=0, share_with=fault_server)
    both = RiakClient([other.url, fault_server.url], timeout=1.0, backoff=0.01)
    alone = RiakClient([other.url], timeout=1.0, retries=2, backoff=0.01)
    try:
        both.store("riaktq", "churn", "k", b"v", indexes={"status_bin": "churn"})
        other.set_stopping(True)
        for _ in range(4):   # round-robin: the stopping node is asked first at least once
            assert both.fetch("riaktq", "churn", "k").value == b"v"
            both.store("riaktq", "churn", "k2", b"w", if_none_match=False)
            assert both.index("riaktq", "churn", "status_bin", "churn").keys == ["k"]
        assert other.counts["stopping"] > 0
        for call in (lambda: alone.fetch("riaktq", "churn", "k"),
                     lambda: alone.store("riaktq", "churn", "k3", b"x", if_none_match=True),
                     lambda: alone.index("riaktq", "churn", "status_bin", "churn"),
                     lambda: alone.delete("riaktq", "churn", "k")):
            with pytest.raises(RiakUnavailable, match="not serving Riak"):
                call()
        other.set_stopping(False)
        # a serving node's own 404 pages stay final: an unknown bucket type
        with pytest.raises(RiakError, match="bucket type nosuchtype does not exist") as err:
            alone.index("nosuchtype", "churn", "status_bin", "churn")
        assert not isinstance(err.value, RiakUnavailable)
        assert alone.fetch("riaktq", "churn", "missing") is None     # "not found\n" is Riak's
    finally:
        both.close()
        alone.close()
        other.stop()


def test_stats_right_after_a_rejoin_says_the_counts_may_be_partial(fault_server, tmp_path):
    """Listings that say when they may be partial: the node's /stats shows a
    handoff in flight (or a member down); selections by status warn, and
    changes by selection refuse (exit 3) unless --force."""
    from tests.conftest import FAST, Processes, write_config
    cfg = write_config(tmp_path / "riaktq.toml", "riak", fault_server.url, **FAST)
    procs = Processes(tmp_path, cfg)
    assert procs.run("open", "t1", "--in", "x").returncode == 0
    settled = procs.run("stats", "--format", "json")
    assert json_of(settled)["partial"] is None
    fault_server.rejoin(60.0, since=time.time())
    try:
        assert procs.run("open", "t2", "--in", "y").returncode == 0    # hidden from 2i for now
        assert json_of(procs.run("get", "t2", "--format", "json"))["status"] == "todo"
        table = procs.run("stats")
        assert table.returncode == 0 and "counts may be partial" in table.stdout.decode()
        assert "handoff" in json_of(procs.run("stats", "--format", "json"))["partial"]
        listing = procs.run("tasks", "--status", "todo", "--format", "csv")
        assert listing.returncode == 0 and "listings may be partial" in listing.stderr.decode()
        assert b"t1," in listing.stdout and b"t2," not in listing.stdout    # what the warning is for
        for change in (("purge", "--status", "done", "--age", "0s"), ("requeue", "--status", "failed"),
                       ("cancel", "--status", "todo")):
            refused = procs.run(*change)
            err = refused.stderr.decode().strip()
            assert refused.returncode == 3 and len(err.splitlines()) == 1 and "--force" in err, (change, err)
            assert procs.run(*change, "--dry-run").returncode == 0
        forced = procs.run("cancel", "--status", "todo", "--force")    # acts on what it sees
        assert forced.returncode == 0 and forced.stdout == b"t1\tfailed\n"
    finally:
        fault_server.settle()
    assert "counts may be partial" not in procs.run("stats").stdout.decode()


def test_a_configured_node_that_is_down_makes_listings_partial(fault_server, tmp_path):
    from riaktq_testing.riak_sim import RiakTestServer
    from tests.conftest import FAST, Processes, write_config
    other = RiakTestServer(port=0, share_with=fault_server)
    cfg = write_config(tmp_path / "riaktq.toml", "riak", fault_server.url, **FAST)
    cfg.write_text(cfg.read_text().replace(f'nodes = ["{fault_server.url}"]',
                                           f'nodes = ["{fault_server.url}", "{other.url}"]'))
    try:
        other.set_down(True)
        partial = json_of(Processes(tmp_path, cfg).run("stats", "--format", "json"))["partial"]
        assert f"node {other.url} does not answer" in partial
    finally:
        other.stop()


def test_the_embedded_store_never_says_partial(tmp_path):
    from tests.conftest import Processes, write_config
    procs = Processes(tmp_path, write_config(tmp_path / "riaktq.toml", "sqlite"))
    assert procs.run("open", "t1", "--in", "x").returncode == 0
    assert json_of(procs.run("stats", "--format", "json"))["partial"] is None
    listing = procs.run("tasks", "--status", "todo")
    assert listing.returncode == 0 and b"partial" not in listing.stderr


def json_of(result):
    import json
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_the_test_server_models_a_stopping_node_and_a_rejoin(fault_server):
    """What the faults look like on the wire, and their control switches
    (`/__test__/stopping`, `/__test__/rejoin`) for other processes."""
    import json
    import urllib.error
    import urllib.request

    def get(path):
        try:
            with urllib.request.urlopen(fault_server.url + path, timeout=5) as resp:
                return resp.status, resp.headers.get("Content-Type"), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type"), err.read()

    def control(path):
        urllib.request.urlopen(urllib.request.Request(fault_server.url + path, method="POST"), timeout=5)
    control("/__test__/stopping?enabled=true")
    for path in ("/ping", "/stats", "/types/riaktq/buckets/b/keys/k", "/types/riaktq/buckets/b/index/x_bin/y"):
        status, ctype, body = get(path)
        assert (status, ctype) == (404, "text/html") and b"mochiweb+webmachine" in body, path
    control("/__test__/stopping?enabled=false")
    assert get("/ping")[0] == 200
    stats = json.loads(get("/stats")[2])
    assert fault_server.node_name in stats["ring_members"] and stats["hinted_handoff_inbound_active_transfers"] == 0
    control(f"/__test__/rejoin?seconds=30&since={time.time() - 60}")
    try:
        assert json.loads(get("/stats")[2])["hinted_handoff_inbound_active_transfers"] == 1
    finally:
        fault_server.settle()


def test_open_batch_names_the_lines_not_opened_when_no_node_answers(fault_server, tmp_path):
    import json
    from tests.conftest import FAST, Processes, write_config
    cfg = write_config(tmp_path / "riaktq.toml", "riak", fault_server.url, **FAST)
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": f"b{i}", "in": "x"}) + "\n" for i in range(20)))
    fault_server.set_stopping(True)
    try:
        result = Processes(tmp_path, cfg).run("open", "--batch", str(batch))
    finally:
        fault_server.set_stopping(False)
    err = result.stderr.decode().strip()
    assert result.returncode == 3 and len(err.splitlines()) == 1, err
    assert "20 line(s) not opened (lines 1-20), 0 refused: riak: no node answered" in err


def test_a_batch_cut_short_names_what_did_not_land():
    from riaktq_cli.commands.tasks import _batch_cut_short
    from riaktq_cli.errors import DuplicateTask, PartialCreate, StoreUnavailable
    down = StoreUnavailable("riak: no node answered")
    cut = PartialCreate(str(down), [None, down, DuplicateTask("t3"), down, None])
    chunk = [(n, {}) for n in range(1, 6)]
    with pytest.raises(StoreUnavailable) as err:
        _batch_cut_short(cut, chunk, [(6, {}), (7, {})], 0)
    assert str(err.value) == "4 line(s) not opened (lines 2, 4, 6-7), 1 refused: riak: no node answered"
