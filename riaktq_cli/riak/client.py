"""RiakClient: the one object the Riak task store talks to.

Why our own client: the ``riak`` package on PyPI (2.7.0, 2016) does not import
on Python 3.7+, and a task store needs only a handful of calls -- fetch (with
siblings), store (with vclock, 2i and conditional create), delete, 2i queries
with pagination, bucket and type properties, and a ping.  Everything follows
the facts in the RIAK_HTTP notes.  The work is spread by concept:

* transport.py -- nodes, connection pools, retries, failover, credentials;
* objects.py   -- fetch / store / delete, siblings, index headers;
* queries.py   -- 2i queries and their pages;
* errors.py    -- the one-line errors and the refusals that are final;
* security.py  -- TLS, credentials and keeping the password out of messages.

With Riak security on, nodes are ``https://`` URLs, every request carries
basic auth, and the answers that say *no* -- 401 (who are you?), 403 (not
allowed), 426 (not over plain HTTP) and a certificate that does not verify
-- raise a RiakRefused at once, with one line that says what to fix.
"""

from __future__ import annotations

import json
import ssl

from .errors import RiakError, unexpected
from .objects import ObjectCalls
from .queries import ACCEPT_JSON, IndexQueries
from .security import Secret, TlsSettings, make_ssl_context, tls_probe
from .transport import Transport, bucket_path, normalize_node, seg


class RiakClient(ObjectCalls, IndexQueries):
    """Talks to one Riak KV cluster over HTTP, through any of its nodes.

    ``retries`` is the number of further attempts after the first one, spread
    over the nodes (so ``retries=4`` means at most 5 requests per call).
    ``timeout`` bounds both connecting and each read.  Safe to share between
    threads.
    """

    api = "http"
    transport_class = Transport

    def __new__(cls, nodes: list[str] | str = (), *args, **kwargs):
        """``pb://`` / ``pbs://`` nodes make a PbClient: the same calls over Riak's
        Protocol Buffers API (pb/client.py), so callers never choose a class."""
        if cls is RiakClient:
            from .pb.transport import is_pb_node
            listed = [nodes] if isinstance(nodes, str) else list(nodes)
            pb = [is_pb_node(n) for n in listed]
            if any(pb):
                if not all(pb):
                    raise ValueError("riak: nodes must all be pb(s):// or all http(s)://, "
                                     "not a mix")
                from .pb.client import PbClient
                return super().__new__(PbClient)
        return super().__new__(cls)

    def __init__(self, nodes: list[str], timeout: float = 5.0, retries: int = 4,
                 backoff: float = 0.05, backoff_max: float = 2.0, pool_size: int = 4, *,
                 username: str | None = None, password: Secret | str | None = None,
                 tls: TlsSettings | None = None, _ssl_context: ssl.SSLContext | None = None,
                 _quiet: bool = False):
        if isinstance(nodes, str):
            nodes = [nodes]
        if not nodes:
            raise ValueError("riak: at least one node URL is needed")
        if isinstance(password, str):
            password = Secret(password)
        if (username is None) != (password is None):
            raise ValueError("riak: username and password go together")
        self.username = username
        self._secret = password
        self.tls = tls or TlsSettings()
        self.transport = self.transport_class(nodes, timeout=timeout, retries=retries, backoff=backoff,
                                   backoff_max=backoff_max, pool_size=pool_size,
                                   username=username, password=password, tls=self.tls,
                                   ssl_context=_ssl_context, quiet=_quiet)

    def for_node(self, node: str) -> "RiakClient":
        """A client for exactly one node, with the same credentials and TLS
        and no retries: ``riaktq check`` probes each node on its own."""
        return RiakClient([node], timeout=self.transport.timeout, retries=0, pool_size=1,
                          username=self.username, password=self._secret, tls=self.tls,
                          _ssl_context=self.transport.ssl_context, _quiet=True)

    def tls_report(self, node: str):
        """A TlsReport of one handshake with ``node`` (None for http://)."""
        url = normalize_node(node)
        if not url.startswith("https://"):
            return None
        ctx = self.transport.ssl_context or make_ssl_context(self.tls)
        return tls_probe(url, ctx, self.transport.timeout)

    @property
    def nodes(self) -> list[str]:
        return [n.url for n in self.transport.nodes]

    def close(self) -> None:
        """Close every pooled connection."""
        self.transport.close()

    def node_stats(self, node: str) -> dict:
        """``GET /stats`` of one node (JSON); RiakUnavailable if it does not
        answer as Riak.  Not covered by Riak security, but credentials go
        along as on every request."""
        target = next(n for n in self.transport.nodes if n.url == normalize_node(node))
        resp, _ = self.transport.call("GET", "/stats", headers={"Accept": ACCEPT_JSON}, node=target)
        if resp.status != 200:
            raise unexpected("GET", "/stats", resp)
        try:
            return json.loads(resp.data)
        except ValueError:
            raise RiakError("riak: GET /stats: answer is not JSON") from None

    def ping(self) -> None:
        """Succeed if any node answers ``GET /ping``; else RiakUnavailable."""
        resp, _ = self.transport.call("GET", "/ping")
        if resp.status != 200:
            raise unexpected("GET", "/ping", resp)

    # -- properties ------------------------------------------------------------

    def bucket_props(self, btype: str, bucket: str) -> dict:
        """The bucket's properties (its type's defaults plus its own settings)."""
        return self._get_props(btype, bucket_path(btype, bucket) + "/props")

    def type_props(self, btype: str) -> dict:
        """A bucket type's properties; RiakError when the type does not exist
        (types are created only with ``riak admin bucket-type create``)."""
        return self._get_props(btype, f"/types/{seg(btype)}/props")

    def _get_props(self, btype: str, path: str) -> dict:
        resp, _ = self.transport.call("GET", path, headers={"Accept": ACCEPT_JSON})
        if resp.status == 404:
            raise RiakError(f"riak: bucket type {btype} does not exist", status=404)
        if resp.status != 200:
            raise unexpected("GET", path, resp)
        return json.loads(resp.data)["props"]
