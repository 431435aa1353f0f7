"""Shared fixtures: every store test runs on both stores.

`backend` is parametrized over "sqlite" and "riak". The riak half talks to
the project's Riak test server (riaktq_testing.riak_sim), or to a real node
when RIAKTQ_TEST_RIAK_URL is set; each test gets its own bucket prefix, so
tests never see each other's data on a shared node.

Riak's two APIs: the "riak" half speaks HTTP, or Protocol Buffers with
RIAKTQ_TEST_RIAK_TRANSPORT=pb (the test server's PB port), or whatever
RIAKTQ_TEST_RIAK_URL names (http(s):// or pb(s)://). The store's contract
(BOTH_TRANSPORTS modules) runs on the other API too in every run against the
test server: `backend` is then "riak" with `.transport` "pb" (id riak-pb).

With Riak security on, the whole Riak half runs over HTTPS with a user:
against a real node, RIAKTQ_TEST_RIAK_URL=https://... plus
RIAKTQ_TEST_RIAK_USER, RIAKTQ_TEST_RIAK_PASSWORD and RIAKTQ_TEST_RIAK_CA (the
CA file); against the test server, RIAKTQ_TEST_RIAK_SECURE=1 (a CA made with
trustme). `write_config` then adds username, password_file and ca_file.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_RIAK = os.environ.get("RIAKTQ_TEST_RIAK_URL")
SECURE_TEST_SERVER = os.environ.get("RIAKTQ_TEST_RIAK_SECURE") == "1"
TRANSPORTS = ("http", "pb")
if REAL_RIAK:
    RIAK_TRANSPORT = "pb" if REAL_RIAK.lower().startswith(("pb://", "pbs://")) else "http"
else:
    RIAK_TRANSPORT = os.environ.get("RIAKTQ_TEST_RIAK_TRANSPORT", "http").lower()
    assert RIAK_TRANSPORT in TRANSPORTS, "RIAKTQ_TEST_RIAK_TRANSPORT must be http or pb"
# Test modules whose store tests also run on the other transport (test server only).
BOTH_TRANSPORTS = {"test_store", "test_store_contract"}
# node URL -> (user, password, CA file): what write_config adds for that node
RIAK_CREDENTIALS = {}
if REAL_RIAK and os.environ.get("RIAKTQ_TEST_RIAK_USER"):
    RIAK_CREDENTIALS[REAL_RIAK.rstrip("/")] = (os.environ["RIAKTQ_TEST_RIAK_USER"],
                                               os.environ.get("RIAKTQ_TEST_RIAK_PASSWORD", ""),
                                               os.environ.get("RIAKTQ_TEST_RIAK_CA"))


@pytest.fixture(scope="session")
def riak_server(tmp_path_factory):
    """The Riak test server for the whole session (None against a real node)."""
    if REAL_RIAK:
        yield None
        return
    from riaktq_testing.riak_sim import RiakTestServer
    if SECURE_TEST_SERVER:
        server = secure_test_server(tmp_path_factory.mktemp("riak-tls"))
    else:
        server = RiakTestServer(port=0, pb_port=0)
    server.start()
    server.listings = 0
    plain_reset = server.reset_counts

    def reset_counts():
        # tests reset the counters; the suite-wide listing count survives it
        server.listings += listings(server)
        plain_reset()
    server.reset_counts = reset_counts
    yield server
    total = server.listings + listings(server)
    server.stop()
    assert total == 0, f"the Riak test server saw {total} key or bucket listing(s)"


TEST_USER, TEST_PASSWORD = "riaktq", "s3cret-pw"
READER, READER_PASSWORD = "reader", "r3ad-only"


def make_ca(directory):
    """A CA (ca.pem) and a server certificate for 127.0.0.1 (server.pem),
    made with trustme; returns (ca, paths)."""
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, server_pem = Path(directory) / "ca.pem", Path(directory) / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    return ca, ca_file, server_pem


def secure_test_server(directory, **kwargs):
    """A test server with Riak security on, as the transcripts' secure node:
    HTTPS (TLS 1.2), user riaktq with every grant, reader with get and 2i.
    Its credentials are registered for write_config; `.ca_file` is the CA."""
    from riaktq_testing.riak_sim import RiakTestServer, Security, server_tls_context
    _, ca_file, server_pem = make_ca(directory)
    security = Security()
    security.add_user(TEST_USER, TEST_PASSWORD, Security.ALL)
    security.add_user(READER, READER_PASSWORD, ["riak_kv.get", "riak_kv.index"])
    # Riak answers a failed PB login after 5 s; the tests need not wait that long.
    security.auth_failure_delay = 0.05
    kwargs.setdefault("pb_port", 0)
    server = RiakTestServer(port=0, tls=server_tls_context(str(server_pem)), security=security,
                            **kwargs)
    server.ca_file = str(ca_file)
    for transport in TRANSPORTS if server.pb_port else ("http",):
        RIAK_CREDENTIALS[server_url(server, transport)] = (TEST_USER, TEST_PASSWORD, server.ca_file)
    return server


def listings(server):
    return server.counts["list_keys"] + server.counts["list_buckets"]


@pytest.fixture(autouse=True)
def no_key_listing(request):
    """Every test that talked to the Riak test server made no listing."""
    yield
    if "riak_server" in request.fixturenames:
        server = request.getfixturevalue("riak_server")
        if server is not None:
            assert listings(server) == 0, "a key or bucket listing reached the Riak test server"


class RiakBackend(str):
    """The "riak" backend (equal to "riak") on one API: ``transport`` is "http" or "pb"."""

    transport = "http"


def riak_backend(transport):
    backend = RiakBackend("riak")
    backend.transport = transport
    return backend


def pytest_generate_tests(metafunc):
    """`backend`: sqlite and riak, and riak on the other API for BOTH_TRANSPORTS modules."""
    if "backend" not in metafunc.fixturenames or any(
            "backend" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return
    params = [pytest.param("sqlite", id="sqlite"),
              pytest.param(riak_backend(RIAK_TRANSPORT), id="riak")]
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if not REAL_RIAK and module in BOTH_TRANSPORTS and "store" in metafunc.fixturenames:
        other = "pb" if RIAK_TRANSPORT == "http" else "http"
        params.append(pytest.param(riak_backend(other), id=f"riak-{other}"))
    metafunc.parametrize("backend", params, indirect=True)


def server_url(server, transport):
    """The test server's address on one API (pbs:// when it speaks TLS)."""
    if transport == "http":
        return server.url
    return f"{'pbs' if server.tls is not None else 'pb'}://127.0.0.1:{server.pb_port}"


@pytest.fixture
def riak_url(riak_server, request):
    if REAL_RIAK:
        return REAL_RIAK
    transport = RIAK_TRANSPORT
    if "backend" in request.fixturenames:
        transport = getattr(request.getfixturevalue("backend"), "transport", transport)
    return server_url(riak_server, transport)


@pytest.fixture
def fault_server(riak_server):
    """The test server, for fault injection; skipped against a real node."""
    if riak_server is None:
        pytest.skip("fault injection needs the Riak test server")
    yield riak_server
    riak_server.clear_faults()


@pytest.fixture
def backend(request):
    """The store a test runs on. The Riak store is never skipped: if it
    does not import, every Riak test fails (a broken import must fail the
    suite, not make half of it vanish)."""
    param = getattr(request, "param", "sqlite")
    if param == "riak" and not isinstance(param, RiakBackend):
        param = riak_backend(RIAK_TRANSPORT)
    return param


def write_config(path, backend, riak_url=None, **sections):
    """A config file for `backend`, with extra `sections` {name: {key: value}}."""
    lines = [f'[store]\nbackend = "{backend}"\n']
    if backend == "sqlite":
        lines.append(f'[sqlite]\npath = "{path.parent / "riaktq.db"}"\n')
    else:
        prefix = "t" + uuid.uuid4().hex[:12]
        riak = f'[riak]\nnodes = ["{riak_url}"]\nprefix = "{prefix}"\ntimeout = "2s"\n'
        creds = RIAK_CREDENTIALS.get(str(riak_url).rstrip("/"))
        if creds is not None:
            riak += security_lines(path.parent, *creds)
        lines.append(riak)
    for name, values in sections.items():
        body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
        lines.append(f"[{name}]\n{body}\n")
    path.write_text("\n".join(lines))
    return path


def security_lines(directory, user, password, ca_file=None):
    """[riak] lines for a user: the password in a file only its owner reads."""
    secret = Path(directory) / "riak-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    text = f'username = "{user}"\npassword_file = "{secret}"\n'
    return text + (f'ca_file = "{ca_file}"\n' if ca_file else "")


def riak_client(url, **kwargs):
    """A RiakClient for a test node, with its credentials when security is on."""
    from riaktq_cli.riak import RiakClient, TlsSettings
    creds = RIAK_CREDENTIALS.get(str(url).rstrip("/"))
    if creds is not None:
        kwargs.update(username=creds[0], password=creds[1], tls=TlsSettings(ca_file=creds[2]))
    return RiakClient([url], **kwargs)


def take_lease(store, owner, ttl_us, now):
    """One take-or-renew of the scheduler lease by `owner` at the given
    time, through the store's swap_lease and the lease rule every store
    shares (lease.decide): (held, the holder's copy). Lease.attempt does
    the same with the real clock and a settle wait; tests want `now`."""
    from riaktq_cli.lease import decide, winner
    decision = {}

    def choose(copies):
        write, doc = decide(copies, owner, now, ttl_us)
        decision["doc"] = doc
        return doc if write else None
    visible = store.swap_lease(choose)
    holder = winner(visible, now) or decision["doc"]
    return holder["owner"] == owner, holder


def add_security(config_path, riak_url):
    """Append the node's credentials to a config written by `riaktq init`."""
    creds = RIAK_CREDENTIALS.get(str(riak_url).rstrip("/"))
    if creds is not None:
        text = Path(config_path).read_text().replace(
            "[riak]\n", "[riak]\n" + security_lines(Path(config_path).parent, *creds), 1)
        Path(config_path).write_text(text)


FAST = {
    "scheduler": {"interval": "100ms", "instance_timeout": "2s"},
    "worker": {"heartbeat": "200ms", "poll": "50ms"},
}


@pytest.fixture
def config_file(tmp_path, backend, request):
    url = request.getfixturevalue("riak_url") if backend == "riak" else None
    return write_config(tmp_path / "riaktq.toml", backend, url, **FAST)


@pytest.fixture
def store(config_file):
    from riaktq_cli import config
    from riaktq_cli.store import open_store
    s = open_store(config.load(str(config_file)))
    yield s
    s.close()


class Processes:
    """Starts riaktq processes for a test and kills whatever is left."""

    def __init__(self, tmp_path, config_file):
        self.tmp_path = tmp_path
        self.config_file = config_file
        self.procs = []

    def argv(self, *args):
        return [sys.executable, "-m", "riaktq_cli", "--config", str(self.config_file), *args]

    def start(self, *args, name="proc"):
        log = open(self.tmp_path / f"{name}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(self.argv(*args), stdout=log, stderr=subprocess.STDOUT,
                                cwd=self.tmp_path, start_new_session=True)
        proc.log_path = log.name
        self.procs.append(proc)
        return proc

    def run(self, *args, input=None, timeout=60):
        return subprocess.run(self.argv(*args), input=input, capture_output=True,
                              cwd=self.tmp_path, timeout=timeout)

    def stop(self, proc, sig=signal.SIGTERM, timeout=20):
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()


@pytest.fixture
def procs(tmp_path, config_file):
    p = Processes(tmp_path, config_file)
    yield p
    p.cleanup()


def wait_until(predicate, timeout=30.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def read_events(path):
    if not Path(path).exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.endswith("\n")]
