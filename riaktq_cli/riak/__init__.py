"""Riak KV over HTTP or Protocol Buffers (pb/): the thin client the Riak task store is built on.

client.py holds RiakClient and says why the client is our own; transport.py
reaches the nodes (pools, retries, failover), objects.py fetches and stores
objects and their siblings, queries.py runs 2i queries, errors.py holds the
one-line errors; multipart.py parses sibling lists; security.py holds TLS,
credentials and the rules that keep the password out of every message.
"""

from .client import RiakClient
from .errors import (
    RiakAuthFailed,
    RiakBadRequest,
    RiakConflict,
    RiakError,
    RiakHttpsRequired,
    RiakNoBucketType,
    RiakPermissionDenied,
    RiakRefused,
    RiakTlsError,
    RiakUnavailable,
)
from .objects import RiakObject, Sibling
from .queries import IndexPage
from .security import Secret, TlsSettings, redact_url

__all__ = [
    "connect",
    "IndexPage",
    "RiakAuthFailed",
    "RiakBadRequest",
    "RiakClient",
    "connect",
    "RiakConflict",
    "RiakError",
    "RiakHttpsRequired",
    "RiakNoBucketType",
    "RiakObject",
    "RiakPermissionDenied",
    "RiakRefused",
    "RiakTlsError",
    "RiakUnavailable",
    "Secret",
    "Sibling",
    "TlsSettings",
    "redact_url",
]


def connect(nodes, *args, **kwargs):
    """The client for `nodes`: a PbClient (pb/client.py) when they are
    ``pb://`` or ``pbs://``, else the HTTP RiakClient, with the same calls
    and results, so the store never chooses a class. A mix of the two is
    refused: one cluster is reached one way."""
    from .pb.transport import is_pb_node
    listed = [nodes] if isinstance(nodes, str) else list(nodes)
    pb = [is_pb_node(node) for node in listed]
    if any(pb):
        if not all(pb):
            raise ValueError("riak: nodes must all be pb(s):// or all http(s)://, not a mix")
        from .pb.client import PbClient
        return PbClient(nodes, *args, **kwargs)
    return RiakClient(nodes, *args, **kwargs)
