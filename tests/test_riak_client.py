"""The Riak client against the Riak test server, faults included.

Every test gets a fresh server (they start in milliseconds), and the fixture
checks on the way out that no client call listed keys or buckets -- the task
store must never do either.  A few tests speak raw HTTP to the server to pin
down the Riak behaviour the client relies on, so that the server cannot drift
into something friendlier than Riak.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing

import pytest
import urllib3

from riaktq_cli.riak import (
    IndexPage,
    RiakAuthFailed,
    RiakBadRequest,
    RiakClient,
    RiakConflict,
    RiakError,
    RiakHttpsRequired,
    RiakObject,
    RiakPermissionDenied,
    RiakTlsError,
    RiakUnavailable,
    Secret,
    TlsSettings,
)
from riaktq_cli.riak import objects as objects_module
from riaktq_cli.riak.multipart import MultipartError, parse_multipart
from tests.conftest import server_url, wait_until
from riaktq_testing.riak_sim import RiakTestServer

T = "riaktq"  # the allow_mult bucket type the test server creates by default
B = "tasks"
ODD_KEYS = ["a/b", "a+b", "a b", "ü", "with space", "100%", "x?y#z&w=1", "ключ/日本"]


@pytest.fixture
def riak_test_server():
    server = RiakTestServer(port=0, pb_port=0)
    yield server
    server.stop()
    assert server.counts["list_keys"] == 0, "a client call listed keys"
    assert server.counts["list_buckets"] == 0, "a client call listed buckets"


@pytest.fixture(params=["http", "pb"])
def api(request):
    """Riak's API the client speaks: every client test runs on both."""
    return request.param


@pytest.fixture
def client(riak_test_server, api):
    c = RiakClient([node_url(riak_test_server, api)], timeout=1.0, retries=4, backoff=0.01,
                   backoff_max=0.05)
    yield c
    c.close()


def node_url(server, api):
    return server.url if api == "http" else server_url(server, "pb")


def raw(server, method, path, body=None, headers=None):
    """One plain HTTP request to the test server (no client logic)."""
    http = urllib3.PoolManager(retries=False)
    try:
        return http.request(method, server.url + path, body=body, headers=headers or {})
    finally:
        http.clear()


# --------------------------------------------------------------------------
# Values and keys


def test_binary_values_and_odd_keys_round_trip(client, riak_test_server):
    value = bytes(range(256)) + b"\r\n--not-a-boundary\r\n\r\n"
    for i, key in enumerate(ODD_KEYS):
        client.store(T, B, key, value + bytes([i]), "application/octet-stream")
    for i, key in enumerate(ODD_KEYS):
        obj = client.fetch(T, B, key)
        assert obj is not None and len(obj.siblings) == 1
        assert obj.key == key
        assert obj.value == value + bytes([i])
        assert obj.siblings[0].content_type == "application/octet-stream"
    # The server saw the keys themselves: "+" was not turned into a space,
    # "/" did not split the path.
    stored = set(riak_test_server.store.bucket(T, B).objects)
    assert stored == set(ODD_KEYS)


def test_missing_key_is_none(client):
    assert client.fetch(T, B, "nothing-here") is None


def test_unknown_bucket_type_is_an_error_not_a_miss(client):
    with pytest.raises(RiakError) as err:
        client.fetch("no_such_type", B, "k")
    assert str(err.value) == "riak: bucket type no_such_type does not exist"
    with pytest.raises(RiakError, match="bucket type no_such_type does not exist"):
        client.store("no_such_type", B, "k", b"{}")
    with pytest.raises(RiakError, match="bucket type no_such_type does not exist"):
        client.type_props("no_such_type")


def test_store_requires_bytes(client):
    with pytest.raises(TypeError):
        client.store(T, B, "k", "text")


def test_empty_names_are_refused(client):
    # ".../keys/" would be the key listing, not a key.
    for call in (lambda: client.fetch(T, B, ""), lambda: client.store(T, "", "k", b""),
                 lambda: client.delete("", B, "k"), lambda: client.index(T, B, "x_bin", "")):
        with pytest.raises(ValueError):
            call()


# --------------------------------------------------------------------------
# Vector clocks and siblings


def test_read_modify_write_with_vclock_leaves_no_sibling(client, riak_test_server):
    client.store(T, B, "k", b'{"n": 1}', indexes={"status_bin": "todo"})
    for n in range(2, 6):
        obj = client.fetch(T, B, "k")
        assert len(obj.siblings) == 1
        client.store(T, B, "k", json.dumps({"n": n}).encode(), vclock=obj.vclock,
                     indexes={"status_bin": "todo"})
    obj = client.fetch(T, B, "k")
    assert json.loads(obj.value) == {"n": 5}
    assert riak_test_server.sibling_count(T, B, "k") == 1


def test_blind_writes_make_siblings_parsed_byte_exact_then_resolved(client, riak_test_server, api):
    first = b"\x00\r\n\r\n--binary\r\nContent-Type: x/y\r\n\r\n\xff\r\n"
    second = b'{"who": "second"}\n'
    client.store(T, B, "k", first, "application/octet-stream",
                 indexes={"status_bin": ["todo"], "prio_int": [3, 20, 100]})
    client.store(T, B, "k", second, "application/json", indexes={"status_bin": "nextup"})
    obj = client.fetch(T, B, "k")
    assert len(obj.siblings) == 2
    assert riak_test_server.counts["status_300"] == (1 if api == "http" else 0)
    by_value = {s.value: s for s in obj.siblings}
    assert set(by_value) == {first, second}
    assert by_value[first].content_type == "application/octet-stream"
    assert by_value[first].indexes == {"prio_int": ["3", "20", "100"], "status_bin": ["todo"]}
    assert by_value[second].content_type == "application/json"
    assert by_value[second].indexes == {"status_bin": ["nextup"]}
    assert not any(s.deleted for s in obj.siblings)
    with pytest.raises(ValueError, match="2 siblings"):
        obj.value
    # Both siblings are indexed until resolved.
    assert client.index(T, B, "status_bin", "todo").keys == ["k"]
    assert client.index(T, B, "status_bin", "nextup").keys == ["k"]
    # Writing back with the 300's clock replaces both.
    client.store(T, B, "k", b'{"merged": true}', vclock=obj.vclock,
                 indexes={"status_bin": "done"})
    obj = client.fetch(T, B, "k")
    assert len(obj.siblings) == 1 and obj.value == b'{"merged": true}'
    assert client.index(T, B, "status_bin", "todo").keys == []
    assert client.index(T, B, "status_bin", "done").keys == ["k"]


def test_stale_vclock_keeps_the_concurrent_sibling(client):
    client.store(T, B, "k", b"v1")
    base = client.fetch(T, B, "k")
    client.store(T, B, "k", b"v2a", vclock=base.vclock)  # writer A
    client.store(T, B, "k", b"v2b", vclock=base.vclock)  # writer B, same old clock
    obj = client.fetch(T, B, "k")
    assert sorted(s.value for s in obj.siblings) == [b"v2a", b"v2b"]


def test_sibling_storm_simulates_concurrent_writers(client, riak_test_server):
    client.store(T, B, "k", b"v1")
    riak_test_server.sibling_storm(1)
    obj = client.fetch(T, B, "k")
    client.store(T, B, "k", b"v2", vclock=obj.vclock)
    obj = client.fetch(T, B, "k")
    assert sorted(s.value for s in obj.siblings) == [b"v1", b"v2"]
    client.store(T, B, "k", b"v3", vclock=obj.vclock)  # storm over: resolves
    assert client.fetch(T, B, "k").value == b"v3"


def test_default_type_is_last_write_wins(client):
    client.store("default", B, "k", b"one")
    client.store("default", B, "k", b"two")
    obj = client.fetch("default", B, "k")
    assert len(obj.siblings) == 1 and obj.value == b"two"


def test_returnbody_gives_the_stored_object_and_its_siblings(client):
    obj = client.store(T, B, "k", b"v1", returnbody=True)
    assert isinstance(obj, RiakObject) and obj.value == b"v1" and obj.vclock
    obj = client.store(T, B, "k", b"v2", returnbody=True)  # blind: sibling
    assert sorted(s.value for s in obj.siblings) == [b"v1", b"v2"]
    resolved = client.store(T, B, "k", b"v3", vclock=obj.vclock, returnbody=True)
    assert resolved.value == b"v3" and len(resolved.siblings) == 1
    assert client.store(T, B, "k", b"v4", vclock=resolved.vclock) is None


def test_text_plain_sibling_list_is_fetched_by_vtag(client, monkeypatch):
    # A proxy or old node that ignores our Accept sends the vtag list.
    monkeypatch.setattr(objects_module, "ACCEPT_SIBLINGS", "*/*")
    client.store(T, B, "k", b"one\r\n")
    client.store(T, B, "k", b"two\r\n")
    obj = client.fetch(T, B, "k")
    assert sorted(s.value for s in obj.siblings) == [b"one\r\n", b"two\r\n"]
    assert obj.vclock


# --------------------------------------------------------------------------
# Tombstones and conditional creates


def test_tombstones(client, riak_test_server):
    client.store(T, B, "k", b"v1", indexes={"status_bin": "todo"})
    client.delete(T, B, "k")
    assert client.fetch(T, B, "k") is None
    assert client.index(T, B, "status_bin", "todo").keys == []
    tomb = client.fetch(T, B, "k", include_tombstone=True)
    assert tomb.deleted and tomb.vclock
    client.delete(T, B, "k")  # deleting again (404) is fine
    client.delete(T, B, "never-existed")
    # A blind re-create on allow_mult keeps the tombstone as a sibling ...
    client.store(T, B, "k", b"v2")
    obj = client.fetch(T, B, "k")
    assert len(obj.siblings) == 2
    assert [s.value for s in obj.live_siblings] == [b"v2"]
    assert [s.deleted for s in obj.siblings].count(True) == 1
    # ... which a write with the 300's clock resolves.
    client.store(T, B, "k", b"v3", vclock=obj.vclock)
    assert client.fetch(T, B, "k").value == b"v3"
    # Re-creating with the tombstone's clock leaves no tombstone sibling.
    client.delete(T, B, "k")
    tomb = client.fetch(T, B, "k", include_tombstone=True)
    client.store(T, B, "k", b"v4", vclock=tomb.vclock)
    assert client.fetch(T, B, "k").value == b"v4"


def test_delete_with_stale_vclock_leaves_tombstone_sibling(client):
    client.store(T, B, "k", b"v1")
    old = client.fetch(T, B, "k")
    client.store(T, B, "k", b"v2", vclock=old.vclock)
    client.delete(T, B, "k", vclock=old.vclock)  # has not seen v2
    obj = client.fetch(T, B, "k")
    assert len(obj.siblings) == 2
    assert [s.value for s in obj.live_siblings] == [b"v2"]
    assert any(s.deleted for s in obj.siblings)


def test_tombstones_are_reaped_after_delete_mode():
    with RiakTestServer(port=0, delete_mode=100) as server:
        with closing(RiakClient([server.url], backoff=0.01)) as c:
            c.store(T, B, "k", b"v")
            c.delete(T, B, "k")
            assert c.fetch(T, B, "k", include_tombstone=True) is not None
            time.sleep(0.15)
            assert c.fetch(T, B, "k", include_tombstone=True) is None


def test_if_none_match_conflict(client, api):
    client.store(T, B, "k", b"v1", if_none_match=True)
    with pytest.raises(RiakConflict) as err:
        client.store(T, B, "k", b"v2", if_none_match=True)
    assert err.value.status == (412 if api == "http" else None) and not err.value.after_retry
    assert "\n" not in str(err.value) and "exists" in str(err.value)
    assert client.fetch(T, B, "k").value == b"v1"
    client.delete(T, B, "k")
    client.store(T, B, "k", b"v3", if_none_match=True)  # a tombstone does not count


def test_lost_answer_to_create_is_flagged_on_the_conflict(client, riak_test_server):
    # The create is applied, its answer lost; the retry meets our own write.
    riak_test_server.drop_next(1, after=True, kinds="put")
    with pytest.raises(RiakConflict) as err:
        client.store(T, B, "k", b"mine", if_none_match=True)
    assert err.value.after_retry
    assert client.fetch(T, B, "k").value == b"mine"


# --------------------------------------------------------------------------
# Secondary indexes


def _fill(client, n, prefix="t"):
    for i in range(n):
        client.store(T, B, f"{prefix}{i:04d}", b"{}",
                     indexes={"status_bin": "todo" if i % 2 == 0 else "done",
                              "prio_int": i % 7 - 3, "order_bin": f"{(n - i):05d}"})


def test_index_exact_and_inclusive_range(client):
    _fill(client, 30)
    todo = client.index(T, B, "status_bin", "todo", max_results=100)  # paginated: sorted
    assert todo.keys == [f"t{i:04d}" for i in range(0, 30, 2)]
    assert todo.continuation is None and todo.results == []
    # Range, inclusive at both ends; _int compares numerically (-3..3).
    page = client.index(T, B, "prio_int", start=-1, end=2)
    expected = sorted(f"t{i:04d}" for i in range(30) if -1 <= i % 7 - 3 <= 2)
    assert sorted(page.keys) == expected
    page = client.index(T, B, "order_bin", start="00010", end="00012", return_terms=True)
    assert sorted(page.results) == [("00010", "t0020"), ("00011", "t0019"), ("00012", "t0018")]
    # Riak returns terms only for ranges on a _bin/_int field: anything else is refused.
    with pytest.raises(ValueError, match="return_terms"):
        client.index(T, B, "status_bin", "done", return_terms=True, max_results=2)
    with pytest.raises(ValueError, match="return_terms"):
        client.index(T, B, "$key", start="t0003", end="t0005", return_terms=True)
    # $key ranges work too.
    assert client.index(T, B, "$key", start="t0003", end="t0005", max_results=9).keys == [
        "t0003", "t0004", "t0005"]


def test_unpaginated_index_has_no_promised_order(client):
    _fill(client, 40)
    page = client.index(T, B, "status_bin", "todo")
    assert sorted(page.keys) == [f"t{i:04d}" for i in range(0, 40, 2)]
    assert page.keys != sorted(page.keys)  # the server shuffles, as a cluster would


def test_pagination_returns_everything_once_in_order(client, riak_test_server):
    _fill(client, 240)
    riak_test_server.reset_counts()
    keys = list(client.index_all(T, B, "status_bin", "todo", page_size=40))
    assert keys == [f"t{i:04d}" for i in range(0, 240, 2)]  # 120 keys: 3 full pages
    assert riak_test_server.counts["index"] == 4  # ... and the empty one after
    pairs = list(client.index_all(T, B, "order_bin", start="00001", end="00240",
                                  page_size=7, return_terms=True))
    assert pairs == sorted(pairs) and len(pairs) == 240
    assert pairs[0] == ("00001", "t0239") and pairs[-1] == ("00240", "t0000")
    ints = list(client.index_all(T, B, "prio_int", start=-3, end=3, page_size=9,
                                 return_terms=True))
    assert [int(t) for t, _ in ints] == sorted(int(t) for t, _ in ints)
    assert len(ints) == 240 and len(set(ints)) == 240


def test_manual_pages_follow_continuations(client):
    _fill(client, 25)
    seen, cont = [], None
    while True:
        page = client.index(T, B, "order_bin", start="00000", end="99999",
                            max_results=10, continuation=cont)
        assert isinstance(page, IndexPage) and len(page.keys) <= 10
        seen += page.keys
        cont = page.continuation
        if cont is None:
            break
    assert seen == [f"t{i:04d}" for i in range(24, -1, -1)]


def test_range_key_with_several_terms_appears_once_per_term(client):
    client.store(T, B, "multi", b"{}", indexes={"tag_bin": ["a", "b", "c"]})
    client.store(T, B, "single", b"{}", indexes={"tag_bin": "b"})
    pairs = list(client.index_all(T, B, "tag_bin", start="a", end="z", page_size=2,
                                  return_terms=True))
    assert pairs == [("a", "multi"), ("b", "multi"), ("b", "single"), ("c", "multi")]


def test_utf8_index_values_round_trip(client):
    client.store(T, B, "k", b"{}", indexes={"name_bin": ["ü-日本"]})
    assert client.fetch(T, B, "k").siblings[0].indexes == {"name_bin": ["ü-日本"]}
    assert client.index(T, B, "name_bin", "ü-日本").keys == ["k"]


def test_index_values_riak_would_split_are_refused(client):
    with pytest.raises(ValueError, match="comma"):
        client.store(T, B, "k", b"{}", indexes={"x_bin": ["a, b"]})
    with pytest.raises(ValueError, match="_bin or _int"):
        client.store(T, B, "k", b"{}", indexes={"status": ["todo"]})
    with pytest.raises(ValueError, match="not an integer"):
        client.store(T, B, "k", b"{}", indexes={"p_int": ["x"]})
    client.store(T, B, "k", b"{}", indexes={"x_bin": ["a,b"]})  # no space: one value
    assert client.index(T, B, "x_bin", "a,b").keys == ["k"]
    with pytest.raises(ValueError):
        client.index(T, B, "x_bin", "a", start="a", end="b")


def test_bad_request_names_status_and_riak_message(client, api):
    with pytest.raises(RiakBadRequest) as err:
        client.index(T, B, "p_int", "not-a-number")
    text = str(err.value)
    assert text.startswith("riak: ") and "p_int" in text and "\n" not in text
    if api == "http":
        assert "400" in text and err.value.status == 400
    else:  # Riak's PB handler crashes on it: the first words of the reason, not 10 KB of trace
        assert "field_parsing_failed" in text and len(text) < 300
    client.ping()  # a fresh connection replaced the one the crash closed


def test_2i_on_a_backend_without_indexes():
    with RiakTestServer(port=0, backend_2i=False) as server:
        with closing(RiakClient([server.url], backoff=0.01)) as c:
            with pytest.raises(RiakError) as err:
                c.index(T, B, "status_bin", "todo")
    assert err.value.status == 500
    assert "indexes_not_supported" in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------
# Properties and health


def test_bucket_and_type_props(client, api):
    props = client.type_props(T)
    assert props["allow_mult"] is True
    assert props.get("dvv_enabled") is (True if api == "http" else None)  # no PB field
    assert client.type_props("default")["allow_mult"] is False
    assert client.bucket_props(T, B)["n_val"] == 3
    with pytest.raises(RiakError, match="no_such_type does not exist"):
        client.type_props("no_such_type")


def test_ping_and_a_client_for_one_node(client, riak_test_server, api):
    client.ping()
    url = node_url(riak_test_server, api)
    one = client.for_node(url)  # what `riaktq check` probes each node with
    one.ping()
    riak_test_server.set_down(True)
    with pytest.raises(RiakUnavailable) as err:
        one.ping()
    one.close()
    assert str(err.value) == f"riak: no node answered ({url}: connection refused)"


def test_connections_are_kept_alive(client, riak_test_server):
    for i in range(50):
        client.store(T, B, f"k{i}", b"{}")
        client.fetch(T, B, f"k{i}")
    counter = "connections" if client.api == "http" else "pb_connections"
    assert 1 <= riak_test_server.counts[counter] <= client.transport.pool_size


def test_idle_connections_closed_by_the_server_are_replaced():
    with RiakTestServer(port=0, idle_timeout=0.1) as server:
        with closing(RiakClient([server.url], retries=0)) as c:  # no retries: must just work
            c.store(T, B, "k", b"v")
            time.sleep(0.3)
            assert c.fetch(T, B, "k").value == b"v"
            assert server.counts["connections"] == 2


# --------------------------------------------------------------------------
# Faults


def test_503_burst_is_retried_transparently(client, riak_test_server):
    client.store(T, B, "k", b"v")
    riak_test_server.fail_next(3, 503)
    assert client.fetch(T, B, "k").value == b"v"
    assert riak_test_server.counts["status_503"] == 3


def test_endless_503_gives_up_with_one_line(riak_test_server, api):
    url = node_url(riak_test_server, api)
    c = RiakClient([url], retries=2, backoff=0.01)
    riak_test_server.fail_next(10, 503)
    with pytest.raises(RiakUnavailable) as err:
        c.fetch(T, B, "k")
    why = "503 Service Unavailable" if api == "http" else "busy (timeout)"
    assert str(err.value) == f"riak: no node answered ({url}: {why})"
    assert riak_test_server.counts["status_503"] == 3
    riak_test_server.clear_faults()


def test_other_errors_are_not_retried(client, riak_test_server, api):
    riak_test_server.fail_next(1, 500)  # on PB: an error text that is not "busy"
    with pytest.raises(RiakError) as err:
        client.fetch(T, B, "k")
    assert err.value.status == (500 if api == "http" else None)
    assert not isinstance(err.value, RiakUnavailable)
    assert riak_test_server.counts["get"] == 1


def test_slow_answer_times_out_then_retry_succeeds(riak_test_server, api):
    c = RiakClient([node_url(riak_test_server, api)], timeout=0.3, backoff=0.01)
    c.store(T, B, "k", b"v")
    riak_test_server.slow_next(1, 2.0, kinds="get")
    started = time.monotonic()
    assert c.fetch(T, B, "k").value == b"v"
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5
    assert riak_test_server.counts["slowed"] == 1


def test_dropped_connection_is_retried(client, riak_test_server):
    riak_test_server.drop_next(2)
    client.store(T, B, "k", b"v")
    assert client.fetch(T, B, "k").value == b"v"
    assert riak_test_server.counts["dropped"] == 2


def test_two_nodes_one_down(riak_test_server, api):
    other = RiakTestServer(port=0, share_with=riak_test_server, pb_port=0)  # same cluster
    try:
        c = RiakClient([node_url(riak_test_server, api), node_url(other, api)], timeout=0.5,
                       backoff=0.01)
        other.set_down(True)
        started = time.monotonic()
        for i in range(20):
            c.store(T, B, f"k{i}", b"v", indexes={"status_bin": "todo"})
            assert c.fetch(T, B, f"k{i}").value == b"v"
        assert time.monotonic() - started < 3.0  # the down node is skipped, not waited on
        assert len(list(c.index_all(T, B, "status_bin", "todo", page_size=7))) == 20
        other.set_down(False)
        riak_test_server.set_down(True)
        assert c.fetch(T, B, "k3").value == b"v"  # the other node serves the same data
        riak_test_server.set_down(False)
    finally:
        other.stop()


def test_unresponsive_node_is_skipped_for_a_while(riak_test_server, api):
    hung = RiakTestServer(port=0, share_with=riak_test_server, pb_port=0)  # accepts, never answers
    try:
        c = RiakClient([node_url(riak_test_server, api), node_url(hung, api)], timeout=0.2,
                       backoff=0.01)
        c.store(T, B, "k", b"v")
        hung.slow_next(1000, 5.0)
        started = time.monotonic()
        for _ in range(30):
            assert c.fetch(T, B, "k").value == b"v"
        assert time.monotonic() - started < 1.0  # one timeout, not fifteen
        assert hung.counts["get"] <= 2
    finally:
        hung.stop()


def test_all_nodes_down_one_line_message(riak_test_server, api):
    other = RiakTestServer(port=0, pb_port=0)
    first, second = node_url(riak_test_server, api), node_url(other, api)
    c = RiakClient([first, second], retries=3, backoff=0.01)
    riak_test_server.set_down(True)
    other.set_down(True)
    started = time.monotonic()
    with pytest.raises(RiakUnavailable) as err:
        c.fetch(T, B, "k")
    assert time.monotonic() - started < 1.0
    assert str(err.value) == (f"riak: no node answered ({first}: connection "
                              f"refused; {second}: connection refused)")
    other.stop()


def test_node_down_then_up_works_again(client, riak_test_server):
    client.store(T, B, "k", b"v")
    riak_test_server.set_down(True)
    with pytest.raises(RiakUnavailable):
        client.fetch(T, B, "k")
    riak_test_server.set_down(False)
    assert client.fetch(T, B, "k").value == b"v"  # though the node was marked down


def test_faults_can_be_switched_while_requests_run(client, riak_test_server):
    client.store(T, B, "k", b"v")
    errors = []

    def reader():
        try:
            for _ in range(40):
                assert client.fetch(T, B, "k").value == b"v"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    riak_test_server.fail_next(5, 503)
    riak_test_server.drop_next(2)
    for t in threads:
        t.join()
    assert errors == []


# --------------------------------------------------------------------------
# The test server keeps Riak's rules (raw HTTP)


def test_server_object_headers(riak_test_server):
    put = raw(riak_test_server, "PUT", f"/types/{T}/buckets/{B}/keys/k",
              body=b"{}", headers={"Content-Type": "application/json",
                                   "X-Riak-Index-Prio_int": "10, 2, 2",
                                   "X-Riak-Index-status_bin": "todo"})
    assert put.status == 204
    got = raw(riak_test_server, "GET", f"/types/{T}/buckets/{B}/keys/k")
    assert got.status == 200
    assert got.headers["ETag"].startswith('"') and got.headers["X-Riak-Vclock"]
    assert got.headers["X-Riak-Index-prio_int"] == "2, 10"  # lower-cased, sorted, unique
    assert got.headers["Link"] == f'</buckets/{B}>; rel="up"'
    assert got.headers["Vary"] == "Accept-Encoding" and got.headers["Last-Modified"]
    raw(riak_test_server, "PUT", f"/types/{T}/buckets/{B}/keys/k", body=b"2",
        headers={"Content-Type": "text/plain"})
    listing = raw(riak_test_server, "GET", f"/types/{T}/buckets/{B}/keys/k",
                  headers={"Accept": "*/*"})
    assert listing.status == 300 and listing.headers["Content-Type"] == "text/plain"
    assert listing.data.startswith(b"Siblings:\n") and len(listing.data.splitlines()) == 3
    assert raw(riak_test_server, "GET", f"/types/{T}/buckets/{B}/keys/k",
               headers={"Accept": "multipart/mixed"}).headers["Content-Type"].startswith(
        "multipart/mixed; boundary=")


def test_server_rejects_what_riak_rejects(riak_test_server):
    path = f"/types/{T}/buckets/{B}/keys/k"
    assert raw(riak_test_server, "PUT", path, body=b"x").status == 400  # no Content-Type
    assert raw(riak_test_server, "PUT", path, body=b"x",
               headers={"Content-Type": "json"}).status == 415
    assert raw(riak_test_server, "PUT", path, body=b"x",
               headers={"Content-Type": "a/b", "X-Riak-Index-p_int": "x"}).status == 400
    assert raw(riak_test_server, "PUT", path, body=b"x",
               headers={"Content-Type": "a/b", "X-Riak-Index-p": "x"}).status == 400
    assert raw(riak_test_server, "GET", path + "?r=most").status == 400
    assert raw(riak_test_server, "GET", path + "?timeout=soon").status == 400
    assert raw(riak_test_server, "GET", path, headers={"Origin": "null"}).status == 403
    assert raw(riak_test_server, "GET", f"/types/{B}/buckets/{B}/keys/k").data == (
        b"Unknown bucket type: tasks")
    assert raw(riak_test_server, "PATCH", path).status == 501
    resp = raw(riak_test_server, "POST", f"/types/{T}/buckets/{B}/index/x_bin/a")
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
    idx = f"/types/{T}/buckets/{B}/index/x_bin/a"
    assert raw(riak_test_server, "GET", idx + "?max_results=0").status == 400
    # a continuation that is not one Riak gave: Riak 3.2.2 crashes on it (500)
    assert raw(riak_test_server, "GET", idx + "?continuation=bogus").status == 500
    assert raw(riak_test_server, "GET", "/ping").data == b"OK"
    created = raw(riak_test_server, "POST", f"/types/{T}/buckets/{B}/keys", body=b"x",
                  headers={"Content-Type": "text/plain"})
    assert created.status == 201 and created.headers["Location"].startswith(
        f"/types/{T}/buckets/{B}/keys/")


def test_server_counts_listings_so_the_fixture_check_can_fail():
    with RiakTestServer(port=0) as server:
        assert raw(server, "GET", f"/types/{T}/buckets/{B}/keys?keys=true").status == 200
        assert raw(server, "GET", f"/types/{T}/buckets?buckets=true").status == 200
        assert server.counts["list_keys"] == 1 and server.counts["list_buckets"] == 1


def test_server_control_paths_for_other_processes():
    with RiakTestServer(port=0) as server:
        assert raw(server, "POST", "/__test__/fail?n=1&status=503").status == 204
        assert raw(server, "GET", f"/types/{T}/buckets/{B}/keys/k").status == 503
        counts = json.loads(raw(server, "GET", "/__test__/counts").data)
        assert counts["status_503"] == 1
        assert raw(server, "POST", "/__test__/reset").status == 204
        assert "status_503" not in json.loads(raw(server, "GET", "/__test__/counts").data)


# --------------------------------------------------------------------------
# Riak security: HTTPS, basic auth, final refusals


@pytest.fixture
def secure_node(tmp_path):
    """(HTTPS node with security on, its plain-HTTP listener, CA file)."""
    from tests.conftest import secure_test_server
    server = secure_test_server(tmp_path)
    plain = RiakTestServer(port=0, share_with=server, security=server.security)
    yield server, plain, server.ca_file
    plain.stop()
    server.stop()


def secure_client(urls, ca, user="riaktq", password="s3cret-pw", **kwargs):
    kwargs.setdefault("backoff", 0.01)
    return RiakClient(urls, timeout=2.0, username=user, password=password,
                      tls=TlsSettings(ca_file=ca), **kwargs)


def test_https_with_basic_auth_on_a_tls12_only_node(secure_node):
    server, _, ca = secure_node
    c = secure_client([server.url], ca)
    c.store(T, B, "k", b"v", "text/plain", indexes={"status_bin": "todo"})
    assert c.fetch(T, B, "k").value == b"v"
    assert c.index(T, B, "status_bin", "todo").keys == ["k"]
    report = c.tls_report(server.url)
    assert report.protocol == "TLSv1.2" and report.verified and report.not_after
    assert server.counts["status_401"] == 0 and server.counts["connections"] <= 2


def test_refusals_are_final_not_retried_nor_failed_over(secure_node):
    server, plain, ca = secure_node
    twin = RiakTestServer(port=0, share_with=server, tls=server.tls, security=server.security)
    try:
        cases = [
            (secure_client([server.url, twin.url], ca, password="wrong"), RiakAuthFailed,
             "riak: authentication failed for user 'riaktq' at {url}", "status_401"),
            (secure_client([server.url, twin.url], ca, user="reader", password="r3ad-only"),
             RiakPermissionDenied,
             "riak: permission denied: user 'reader' lacks riak_kv.put on bucket type riaktq",
             "status_403"),
            (secure_client([server.url, twin.url], None), RiakTlsError,
             "riak: certificate of {url} not trusted (set ca_file)", "tls_failed"),
        ]
        for client, kind, line, counter in cases:
            server.reset_counts()
            twin.reset_counts()
            with pytest.raises(kind) as err:
                client.store(T, B, "k", b"v", "text/plain")
            assert str(err.value) == line.format(url=err.value.node)
            # (the server counts a failed handshake after the client saw it fail)
            wait_until(lambda: server.counts[counter] + twin.counts[counter] >= 1, timeout=5,
                       message=counter)
            assert server.counts[counter] + twin.counts[counter] == 1, line
            client.close()
        c = secure_client([plain.url], ca)
        with pytest.raises(RiakHttpsRequired) as err:
            c.ping()
        assert str(err.value) == f"riak: this node requires HTTPS (security is enabled): {plain.url}"
        assert plain.counts["status_426"] == 1
    finally:
        twin.stop()


def test_503_is_still_retried_with_credentials(secure_node):
    server, _, ca = secure_node
    c = secure_client([server.url], ca)
    server.fail_next(2, 503)
    c.store(T, B, "k", b"v", "text/plain")
    assert server.counts["status_503"] == 2 and server.counts["status_204"] == 1


def test_expired_password_then_renewed(secure_node):
    server, _, ca = secure_node
    c = secure_client([server.url], ca)
    c.store(T, B, "k", b"v", "text/plain")
    server.security.set_password("riaktq", "expired")
    with pytest.raises(RiakAuthFailed):
        c.fetch(T, B, "k")
    server.security.set_password("riaktq", "s3cret-pw")
    assert c.fetch(T, B, "k").value == b"v"  # no restart, no node skipped


def test_credentials_never_travel_over_plain_http(riak_test_server, secure_node, monkeypatch):
    from riaktq_testing.riak_sim import front
    seen = []
    plain_ping = front._Handler._ping

    def spy(handler):
        seen.append(handler.headers.get("Authorization"))
        return plain_ping(handler)
    monkeypatch.setattr(front._Handler, "_ping", spy)
    RiakClient([riak_test_server.url], username="u", password="p").ping()
    secure, _, ca = secure_node
    secure_client([secure.url], ca).ping()
    assert seen[0] is None and seen[1].startswith("Basic ")  # only over https


def test_secure_server_answers_as_the_recorded_secure_node(secure_node):
    """The 09/09b transcripts (a real Riak 3.2.2 with security on) replayed
    against the test server: every status, header and body as recorded."""
    import subprocess
    import sys
    from tests.shared_files import transcripts
    where = transcripts()
    server, plain, ca = secure_node
    result = subprocess.run([sys.executable, str(where / "replay.py"), "http://127.0.0.1:1",
                             "--skip-cluster", "--only", "09*", "--https-url", server.url, "--ca", ca,
                             "--secure-http-url", plain.url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "0 failed" in result.stdout, result.stdout + result.stderr


def test_urls_with_credentials_are_refused_and_never_shown():
    with pytest.raises(ValueError) as err:
        RiakClient(["https://riaktq:hunter2@riak1:8443"])
    assert "hunter2" not in str(err.value) and "'https://riak1:8443'" in str(err.value)
    assert "password_file" in str(err.value)


def test_password_hides_itself():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + repr({"pw": secret})
    c = RiakClient(["https://127.0.0.1:1"], username="u", password="hunter2")
    assert "hunter2" not in repr(vars(c))


def test_client_certificate_is_presented(tmp_path):
    """Riak's certificate source: the node asks for a client certificate."""
    from tests.conftest import make_ca
    from riaktq_testing.riak_sim import Security, server_tls_context
    ca, ca_file, server_pem = make_ca(tmp_path)
    client_pem = tmp_path / "client.pem"
    ca.issue_cert("riaktq@example").private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    ctx = server_tls_context(str(server_pem), client_ca=str(ca_file))
    security = Security().add_user("riaktq", "pw", Security.ALL)
    with RiakTestServer(port=0, tls=ctx, security=security) as server:
        without = RiakClient([server.url], username="riaktq", password="pw", retries=0,
                             tls=TlsSettings(ca_file=str(ca_file)))
        with pytest.raises((RiakTlsError, RiakUnavailable)):
            without.ping()
        with_cert = RiakClient([server.url], username="riaktq", password="pw",
                               tls=TlsSettings(ca_file=str(ca_file), cert_file=str(client_pem)))
        with_cert.ping()


def test_verify_false_accepts_any_certificate_and_warns_once(secure_node, caplog):
    server, _, _ = secure_node
    with caplog.at_level("WARNING", logger="riaktq.security"):
        c = RiakClient([server.url], username="riaktq", password="s3cret-pw",
                       tls=TlsSettings(verify=False))
        c.ping()
        c.ping()
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "verification is OFF" in caplog.records[0].getMessage()
    assert not c.tls_report(server.url).verified


# --------------------------------------------------------------------------
# The multipart parser on its own


def test_multipart_parser_is_byte_exact():
    values = [b"", b"\r\n", b"a\r\n\r\nb\r\n", b"a--B--\r\n", bytes(range(256))]
    body = b"".join(b"\r\n--B\r\nContent-Type: a/b\r\nX-Riak-Index-x_bin: 1\r\n"
                    b"X-Riak-Index-x_bin: 2\r\n\r\n" + v for v in values) + b"\r\n--B--\r\n"
    parts = parse_multipart(body, "B")
    assert [p.body for p in parts] == values
    assert parts[0].get_all("x-riak-index-x_bin") == ["1", "2"]
    # Also without the leading CRLF, and in the bare-LF form of old Riak.
    assert [p.body for p in parse_multipart(body[2:], "B")] == values
    lf = b"\n--B\nContent-Type: a/b\n\nv1\n--B\nContent-Type: a/b\n\nv2\n--B--\n"
    assert [p.body for p in parse_multipart(lf, "B")] == [b"v1", b"v2"]
    with pytest.raises(MultipartError):
        parse_multipart(body[:-10], "B")  # truncated: never a silent short list


def test_pb_with_security_authenticates_once_per_connection_and_refuses_in_one_line(secure_node):
    """pbs:// against the secure test server: StartTls, one RpbAuthReq per pooled connection,
    and each refusal Riak's PB gives as the same one line (and class) as on HTTPS."""
    server, _, ca = secure_node
    url = server_url(server, "pb")
    assert url.startswith("pbs://")
    c = secure_client([url], ca, pool_size=2)
    for i in range(30):
        c.store(T, B, f"k{i}", b"v", "text/plain", indexes={"status_bin": "todo"})
    assert c.fetch(T, B, "k1").value == b"v"
    assert len(c.index(T, B, "status_bin", "todo").keys) == 30
    assert server.counts["pb_connections"] == 1 and server.counts["auth_failed"] == 0
    c.close()

    twin = RiakTestServer(port=0, share_with=server, tls=server.tls, security=server.security,
                          pb_port=0)
    try:
        urls = [url, server_url(twin, "pb")]
        cases = [
            (secure_client(urls, ca, password="wrong"), RiakAuthFailed,
             "riak: authentication failed for user 'riaktq' at {url}"),
            (secure_client(urls, ca, user="reader", password="r3ad-only"), RiakPermissionDenied,
             "riak: permission denied: user 'reader' lacks riak_kv.put on bucket type riaktq"),
            (secure_client(urls, None), RiakTlsError,
             "riak: certificate of {url} not trusted (set ca_file)"),
        ]
        for client, kind, line in cases:
            server.reset_counts()
            twin.reset_counts()
            with pytest.raises(kind) as err:
                client.store(T, B, "k", b"v", "text/plain")
            assert str(err.value) == line.format(url=err.value.node)
            # final: one node tried once, no failover
            assert server.counts["pb_connections"] + twin.counts["pb_connections"] == 1, line
            client.close()
        plain_pb = url.replace("pbs://", "pb://")
        with pytest.raises(RiakHttpsRequired) as err:
            secure_client([plain_pb], ca).ping()
        assert str(err.value) == (f"riak: this node requires TLS (security is enabled): use {url} "
                                  f"instead of {plain_pb}")
    finally:
        twin.stop()
