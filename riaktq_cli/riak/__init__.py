"""Riak KV over HTTP: the thin client the Riak task store is built on.

See client.py for what it does and why; multipart.py parses sibling lists.
"""

from .client import (
    IndexPage,
    RiakBadRequest,
    RiakClient,
    RiakConflict,
    RiakError,
    RiakObject,
    RiakUnavailable,
    Sibling,
)

__all__ = [
    "IndexPage",
    "RiakBadRequest",
    "RiakClient",
    "RiakConflict",
    "RiakError",
    "RiakObject",
    "RiakUnavailable",
    "Sibling",
]
