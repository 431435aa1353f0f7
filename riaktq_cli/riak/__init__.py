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
    RiakPermissionDenied,
    RiakRefused,
    RiakTlsError,
    RiakUnavailable,
)
from .objects import RiakObject, Sibling
from .queries import IndexPage
from .security import Secret, TlsSettings, redact_url

__all__ = [
    "IndexPage",
    "RiakAuthFailed",
    "RiakBadRequest",
    "RiakClient",
    "RiakConflict",
    "RiakError",
    "RiakHttpsRequired",
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
