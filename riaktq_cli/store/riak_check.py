"""`riaktq check` on Riak: is every node reachable, trusted, and does it let
riaktq do what it must?

Why its own module: with security on, "it does not work" has many causes --
a wrong password, a CA not configured, a grant missing on one bucket type --
and each needs a different fix. The check takes them one at a time, per
node, and for each missing permission prints the exact `riak admin security
grant` command, so an operator can fix it without reading Riak's docs.

Permissions are tried, not guessed: a harmless probe per permission (put,
get, 2i query, delete of one probe key in `<prefix>_check`, read of the
bucket and bucket type properties), through that node only.
"""

import json
import socket
import time

from riaktq_cli.errors import StoreError
from riaktq_cli.riak import RiakError, RiakPermissionDenied, RiakRefused, RiakUnavailable
from riaktq_cli.task import TODO

# What riaktq needs on its bucket type, in the order the probes try them.
NEEDED = ("riak_kv.put", "riak_kv.get", "riak_kv.index", "riak_kv.delete",
          "riak_core.get_bucket", "riak_core.get_bucket_type")
PROBE_INDEX = "kind_bin"
PROBE_TERM = "probe"


def check_store(store):
    """Yield (ok, line) for `riaktq check`."""
    reachable = []
    for node in store.client.nodes:
        yield from _check_node(store, node, reachable)
    if not reachable:
        return
    yield from _check_cluster(store)


def _check_node(store, node, reachable):
    """Lines for one node; appends it to `reachable` when it answers."""
    client = store.client.for_node(node)
    try:
        try:
            client.ping()
        except (RiakRefused, RiakUnavailable) as exc:
            yield False, f"node {node}: {_detail(exc)}"
            return
        except RiakError as exc:
            yield False, f"node {node}: {exc}"
            return
        reachable.append(node)
        yield True, f"node {node} answers ping"
        yield True, f"node {node}: transport {_api_label(client)}"
        yield _tls_line(client, node)
        if client.username is None:
            return
        yield True, f"node {node}: authenticated as user '{client.username}'"
        yield from _permissions(store, client, node)
        if getattr(client, "api", "http") == "http":
            yield from _password_cost(store, client, node)
    finally:
        client.close()


def _api_label(client):
    if getattr(client, "api", "http") == "pb":
        return "Protocol Buffers (one authentication per connection)" if client.username \
            else "Protocol Buffers"
    return "HTTP" + (" with basic auth (the password is checked on every request)"
                     if client.username else "")


# Over HTTPS with basic auth Riak checks the password on every request (~0.3 s on a real
# node); above this, say so with the figure and point to PB, which checks it once.
SLOW_AUTH_MS = 50


def _password_cost(store, client, node):
    """The time one authenticated HTTPS request takes (best of three GETs of a missing key):
    a warning (None: not a failure) when it is slow."""
    timings = []
    for _ in range(3):
        start = time.monotonic()
        try:
            client.fetch(store.btype, f"{store.prefix}_check", "no-such-key")
        except RiakError:
            return
        timings.append((time.monotonic() - start) * 1000)
    cost = min(timings)
    if cost >= SLOW_AUTH_MS:
        yield None, (f"node {node}: each request re-checks the password: {cost:.0f} ms; use "
                      "pbs:// (Protocol Buffers, port 8087: one check per connection)")


def _detail(exc):
    """A client error for a line that already names the node."""
    text = str(exc)
    return text[len("riak: "):] if text.startswith("riak: ") else text


def _tls_line(client, node):
    report = client.tls_report(node)
    if report is None:
        api = "PB" if getattr(client, "api", "http") == "pb" else "HTTP"
        return True, f"node {node}: plain {api} (no TLS; fine only while Riak security is off)"
    if report.error:
        return False, f"node {node}: TLS handshake failed: {report.error}"
    if not report.verified:
        return False, (f"node {node}: {report.protocol}, certificate NOT verified (verify = false): "
                       "set ca_file and remove verify = false")
    subject = report.subject or "no subject"
    return True, (f"node {node}: {report.protocol}, certificate verified ({subject}; "
                  f"expires {report.not_after or 'unknown'})")


def _permissions(store, client, node):
    """One probe per needed permission; a line per missing one with its grant."""
    btype, bucket = store.btype, f"{store.prefix}_check"
    key = f"probe-{socket.gethostname() or 'host'}"
    missing, failures = [], []

    def attempt(permission, call):
        try:
            return call()
        except RiakPermissionDenied:
            missing.append(permission)
        except RiakError as exc:
            failures.append((permission, exc))
        return None

    attempt("riak_kv.put", lambda: client.store(btype, bucket, key, b"{}", "application/json",
                                                indexes={PROBE_INDEX: PROBE_TERM}))
    found = attempt("riak_kv.get", lambda: client.fetch(btype, bucket, key, include_tombstone=True))
    attempt("riak_kv.index", lambda: client.index(btype, bucket, PROBE_INDEX, PROBE_TERM, max_results=1))
    attempt("riak_kv.delete", lambda: client.delete(btype, bucket, key,
                                                    vclock=found.vclock if found else None))
    attempt("riak_core.get_bucket", lambda: client.bucket_props(btype, bucket))
    attempt("riak_core.get_bucket_type", lambda: client.type_props(btype))
    user = client.username
    if not missing and not failures:
        yield True, f"node {node}: user '{user}' has {', '.join(NEEDED)} on bucket type {btype}"
    for permission in missing:
        yield False, (f"node {node}: user '{user}' lacks {permission} on bucket type {btype}; "
                      f"grant it with: riak admin security grant {permission} on {btype} to {user}")
    for permission, exc in failures:
        yield False, f"node {node}: probing {permission}: {_detail(exc)}"
    if missing:
        grant = ",".join(missing)
        yield False, (f"node {node}: all at once: riak admin security grant {grant} on {btype} "
                      f"to {user}")


def _check_cluster(store):
    """The checks that hold for the whole cluster: bucket type, 2i, counts."""
    btype, client = store.btype, store.client
    create = (f"riak admin bucket-type create {btype} '{{\"props\":{{\"allow_mult\":true}}}}'"
              f" && riak admin bucket-type activate {btype}")
    try:
        props = client.type_props(btype)
    except RiakRefused as exc:
        yield False, f"bucket type {btype}: {_detail(exc)}"
        return
    except RiakError as exc:
        yield False, f"bucket type {btype}: {exc}; create it with: {create}"
        return
    if props.get("allow_mult") is not True:
        yield False, (f"bucket type {btype} has allow_mult={json.dumps(props.get('allow_mult'))}; "
                      f"riaktq needs allow_mult=true: riak admin bucket-type update {btype} "
                      "'{\"props\":{\"allow_mult\":true}}' (or use a new type: " + create + ")")
    else:
        yield True, f"bucket type {btype} exists with allow_mult=true"
    try:
        client.index(btype, store.bucket("task"), "status_bin", TODO, max_results=1)
        yield True, "secondary indexes (2i) work"
    except RiakError as exc:
        hint = " (2i needs the leveled or leveldb backend; bitcask has none)" \
            if not isinstance(exc, RiakRefused) and ("indexes_not_supported" in str(exc)
                                                     or "500" in str(exc)) else ""
        yield False, f"secondary indexes: {exc}{hint}"
    try:
        counts = store.count_by_status()
        yield True, "tasks: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    except StoreError as exc:
        yield False, f"task counts: {exc}"
