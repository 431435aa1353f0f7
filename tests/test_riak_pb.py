"""The PB transport's own rules, against a scripted PB node (tests/pb_fake.py).

Behaviour shared with HTTP (objects, siblings, tombstones, 2i) is tested on both APIs against
the Riak test server in test_riak_client.py and through the store; here is what only a
scripted node can show: "may have landed" after a dropped connection, busy answers moved to
another node, refusals that are final, one authentication per pooled connection, and the
one-line texts for Riak's security answers.
"""

import base64
import threading

import pytest

from riaktq_cli.riak import (RiakAuthFailed, RiakClient, RiakConflict, RiakError,
                             RiakHttpsRequired, RiakPermissionDenied, RiakTlsError,
                             RiakUnavailable, TlsSettings)
from riaktq_cli.riak.pb import riak_pb2
from riaktq_cli.riak.pb.client import PbClient
from riaktq_cli.riak.pb.codes import MessageCode
from riaktq_cli.riak.pb.transport import normalize_pb_node
from tests.pb_fake import CLOSE, FakePbNode, error, server_context

T, B = "riaktq", "tasks"


@pytest.fixture
def nodes():
    made = []

    def make(handlers=None, **kwargs):
        node = FakePbNode(handlers, **kwargs)
        made.append(node)
        return node
    yield make
    for node in made:
        node.close()


def client_for(*urls, **kwargs):
    kwargs.setdefault("timeout", 1.0)
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("backoff_max", 0.02)
    return RiakClient(list(urls), **kwargs)


def put_ok(request, state):
    return MessageCode.PUT_RESP, riak_pb2.RpbPutResp()


def test_pb_urls_choose_the_pb_client_and_are_checked():
    assert isinstance(RiakClient(["pb://127.0.0.1"]), PbClient)
    assert type(RiakClient(["http://127.0.0.1:8098"])) is RiakClient
    assert normalize_pb_node("pb://Host") == "pb://host:8087"
    assert normalize_pb_node("pbs://10.0.0.1:18087/") == "pbs://10.0.0.1:18087"
    with pytest.raises(ValueError, match="not a mix"):
        RiakClient(["pb://a:8087", "http://b:8098"])
    with pytest.raises(ValueError, match="credentials in a node URL"):
        RiakClient(["pb://u:pw@a:8087"])
    with pytest.raises(ValueError, match="must not have a path"):
        RiakClient(["pb://a:8087/riak"])


def test_one_connection_serves_many_requests(nodes):
    node = nodes()
    client = client_for(node.url)
    for _ in range(20):
        client.ping()
    assert node.connections == 1
    client.close()


def test_lost_answer_to_create_is_flagged_on_the_conflict(nodes):
    """The first PUT reaches the node, which closes the connection before answering (its
    answer lost): the retry's match_found may be our own write, and says so."""
    calls = []

    def put(request, state):
        calls.append(request.key)
        return CLOSE if len(calls) == 1 else error("match_found")
    node = nodes({MessageCode.PUT_REQ: put})
    client = client_for(node.url)
    with pytest.raises(RiakConflict) as info:
        client.store(T, B, "k1", b"{}", if_none_match=True)
    assert info.value.after_retry is True
    assert str(info.value) == "riak: key 'k1' in riaktq/tasks exists (match_found)"
    assert len(calls) == 2


def test_conflict_without_a_lost_attempt_is_not_after_retry(nodes):
    node = nodes({MessageCode.PUT_REQ: lambda r, s: error("match_found")})
    with pytest.raises(RiakConflict) as info:
        client_for(node.url).store(T, B, "k1", b"{}", if_none_match=True)
    assert info.value.after_retry is False


def test_if_not_modified_stale_clock_is_a_conflict(nodes):
    node = nodes({MessageCode.PUT_REQ: lambda r, s: error("modified")})
    vclock = base64.b64encode(b"clock").decode()
    with pytest.raises(RiakConflict, match="was changed by someone else"):
        client_for(node.url).store(T, B, "k1", b"{}", vclock=vclock, if_not_modified=True)


def test_busy_answer_moves_to_the_other_node_without_skipping(nodes):
    busy = nodes({MessageCode.GET_REQ: lambda r, s: error("timeout")})
    good = nodes({MessageCode.GET_REQ: lambda r, s: (MessageCode.GET_RESP, riak_pb2.RpbGetResp())})
    client = client_for(busy.url, good.url, retries=3)
    for _ in range(4):
        assert client.fetch(T, B, "k") is None
    assert all(n.down_until == 0 for n in client.transport.nodes)


def test_endless_busy_gives_up_with_one_line(nodes):
    node = nodes({MessageCode.GET_REQ: lambda r, s: error("overload")})
    with pytest.raises(RiakUnavailable) as info:
        client_for(node.url, retries=2).fetch(T, B, "k")
    assert str(info.value) == f"riak: no node answered ({node.url}: busy (overload))"


def test_request_errors_are_one_line_and_not_retried(nodes):
    crash = "Error processing incoming message: error:function_clause:[{riak_api_pb_server,\n" \
            + "x" * 5000
    node = nodes({MessageCode.PUT_REQ: lambda r, s: error("{n_val_violation,3}"),
                  MessageCode.INDEX_REQ: lambda r, s: error(crash),
                  MessageCode.DEL_REQ: lambda r, s: error("no_type")})
    client = client_for(node.url)
    with pytest.raises(RiakError, match=r"^riak: PUT riaktq/tasks/k: \{n_val_violation,3\}$"):
        client.store(T, B, "k", b"")
    with pytest.raises(RiakError) as info:
        client.index(T, B, "status_bin", "todo")
    assert "\n" not in str(info.value) and len(str(info.value)) < 250
    with pytest.raises(RiakError, match="^riak: bucket type riaktq does not exist$"):
        client.delete(T, B, "k")
    assert node.seen.count(MessageCode.PUT_REQ) == 1
    assert node.seen.count(MessageCode.INDEX_REQ) == 1


def test_node_that_drops_every_connection_is_skipped_for_a_while(nodes):
    dead = nodes({MessageCode.PING_REQ: lambda r, s: CLOSE})
    good = nodes()
    client = client_for(dead.url, good.url, retries=4)
    for _ in range(6):
        client.ping()
    dead_node = client.transport.nodes[0]
    assert dead_node.streak >= 1 and "closed" in (dead_node.reason or "")
    assert good.seen.count(MessageCode.PING_REQ) == 6


def test_all_nodes_down_one_line(nodes):
    node = nodes()
    node.close()
    with pytest.raises(RiakUnavailable) as info:
        client_for(node.url, retries=1).ping()
    assert str(info.value) == f"riak: no node answered ({node.url}: connection refused)"


def test_security_on_plain_pb_says_use_pbs(nodes, tmp_path):
    from tests.conftest import make_ca
    _, _, server_pem = make_ca(tmp_path)
    node = nodes(tls=server_context(str(server_pem)), users={"riaktq": "pw"})
    plain = node.url.replace("pbs://", "pb://")
    with pytest.raises(RiakHttpsRequired) as info:
        client_for(plain, username="riaktq", password="pw").ping()
    assert str(info.value) == (f"riak: this node requires TLS (security is enabled): use "
                               f"{node.url} instead of {plain}")
    # the password never went over plain TCP
    assert MessageCode.AUTH_REQ not in node.seen


@pytest.fixture
def secure(nodes, tmp_path):
    from tests.conftest import make_ca
    _, ca_file, server_pem = make_ca(tmp_path)

    def denied(request, state):
        return error(f"Permission denied: User '{state['user']}' does not have "
                     f"'riak_kv.put' on riaktq/{request.bucket.decode()}")
    node = nodes({MessageCode.PUT_REQ: denied}, tls=server_context(str(server_pem)),
                 users={"riaktq": "s3cret"})
    node.ca_file = str(ca_file)
    return node


def test_pbs_authenticates_once_per_connection(secure):
    client = client_for(secure.url, username="riaktq", password="s3cret",
                        tls=TlsSettings(ca_file=secure.ca_file), pool_size=2)
    errors = []

    def pings():
        try:
            for _ in range(10):
                client.ping()
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)
    threads = [threading.Thread(target=pings) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert secure.seen.count(MessageCode.AUTH_REQ) == secure.connections <= 2
    assert secure.seen.count(MessageCode.START_TLS) == secure.connections
    assert secure.seen.count(MessageCode.PING_REQ) == 20


def test_refusals_are_final_one_line_and_not_retried(secure, nodes, tmp_path):
    tls = TlsSettings(ca_file=secure.ca_file)
    with pytest.raises(RiakAuthFailed) as info:
        client_for(secure.url, username="riaktq", password="wrong", tls=tls).ping()
    assert str(info.value) == f"riak: authentication failed for user 'riaktq' at {secure.url}"
    assert secure.seen.count(MessageCode.AUTH_REQ) == 1

    with pytest.raises(RiakAuthFailed, match="authentication required .* set username"):
        client_for(secure.url, tls=tls).ping()

    with pytest.raises(RiakPermissionDenied) as info:
        client_for(secure.url, username="riaktq", password="s3cret", tls=tls).store(T, B, "k", b"")
    assert str(info.value) == "riak: permission denied: user 'riaktq' lacks riak_kv.put on bucket type riaktq"
    assert secure.seen.count(MessageCode.PUT_REQ) == 1

    from tests.conftest import make_ca
    (tmp_path / "other").mkdir()
    _, other_ca, _ = make_ca(tmp_path / "other")
    with pytest.raises(RiakTlsError) as info:
        client_for(secure.url, username="riaktq", password="s3cret",
                   tls=TlsSettings(ca_file=str(other_ca))).ping()
    assert str(info.value) == f"riak: certificate of {secure.url} not trusted (set ca_file)"


def test_pbs_to_a_node_without_security_says_use_pb(nodes):
    node = nodes({MessageCode.START_TLS: lambda r, s: error("Security not enabled; STARTTLS not allowed.")})
    tls_url = node.url.replace("pb://", "pbs://")
    with pytest.raises(RiakTlsError) as info:
        client_for(tls_url, tls=TlsSettings(verify=False), _quiet=True).ping()
    assert str(info.value) == (f"riak: {tls_url} has security off, so it offers no TLS on PB: use "
                               f"{node.url} (or turn Riak security on)")


def test_tls_report_over_starttls(secure):
    client = client_for(secure.url, username="riaktq", password="s3cret",
                        tls=TlsSettings(ca_file=secure.ca_file))
    report = client.tls_report(secure.url)
    assert report.error is None and report.verified and report.protocol.startswith("TLSv1")
    assert client.tls_report(secure.url.replace("pbs://", "pb://")) is None


def test_init_probe_finds_the_pb_port(nodes, secure):
    from riaktq_cli.riak.pb.probe import pb_address_for
    plain = nodes()
    assert pb_address_for("http://127.0.0.1:8098", port=plain.port) == plain.url
    assert pb_address_for("https://127.0.0.1:8443", port=secure.port) == secure.url
    closed = nodes()
    closed.close()
    assert pb_address_for("http://127.0.0.1:8098", port=closed.port) is None
    not_riak = nodes({MessageCode.PING_REQ: lambda r, s: CLOSE})
    assert pb_address_for("http://127.0.0.1:8098", port=not_riak.port) is None


def test_check_warns_with_the_figure_when_each_request_rechecks_the_password():
    import time
    from types import SimpleNamespace
    from riaktq_cli.store.riak_check import _password_cost
    store = SimpleNamespace(btype=T, prefix="riaktq")

    def client(seconds):
        return SimpleNamespace(fetch=lambda *a, **k: time.sleep(seconds))
    lines = list(_password_cost(store, client(0.12), "https://n:8443"))
    assert len(lines) == 1 and lines[0][0] is None
    ms = int(lines[0][1].split(": ")[2].split(" ms")[0])
    assert 110 <= ms < 1000
    assert lines[0][1].startswith("node https://n:8443: each request re-checks the password: ")
    assert lines[0][1].endswith("ms; use pbs:// (Protocol Buffers, port 8087: one check per connection)")
    assert list(_password_cost(store, client(0), "https://n:8443")) == []


def test_a_stopping_node_is_a_node_failure_not_an_answer(nodes):
    """A stopping Riak deregisters riak_kv's PB codes first: its "Unknown message code" is
    the PB analogue of a stopping web server's 404 -- nothing applied, try the next node."""
    stopping = nodes({MessageCode.GET_REQ: lambda r, s: error("Unknown message code: 9"),
                      MessageCode.PUT_REQ: lambda r, s: error("Unknown message code: 11")})
    good = nodes({MessageCode.GET_REQ: lambda r, s: (MessageCode.GET_RESP, riak_pb2.RpbGetResp()),
                  MessageCode.PUT_REQ: lambda r, s: error("match_found")})
    client = client_for(stopping.url, good.url, retries=3)
    assert client.fetch(T, B, "k") is None
    assert client.transport.nodes[0].down_until > 0  # skipped for a while
    with pytest.raises(RiakConflict) as info:
        client.store(T, B, "k", b"{}", if_none_match=True)
    assert info.value.after_retry is False  # the stopping node applied nothing
    with pytest.raises(RiakUnavailable, match=r"stopping \(riak_kv not serving\)"):
        client_for(stopping.url, retries=1).fetch(T, B, "k")


def test_init_probes_only_behind_riaks_standard_http_port(monkeypatch):
    from riaktq_cli.riak.pb import probe
    asked = []
    monkeypatch.setattr(probe, "pb_address_for", lambda url: asked.append(url) or "pb://h:8087")
    assert probe.pb_address_for_standard_node("http://h:8098") == "pb://h:8087"
    assert probe.pb_address_for_standard_node("https://h:8443") == "pb://h:8087"
    assert probe.pb_address_for_standard_node("http://127.0.0.1:40123") is None  # a test server
    assert asked == ["http://h:8098", "https://h:8443"]
