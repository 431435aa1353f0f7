"""Riak KV over HTTP: the thin client the Riak task store is built on.

See client.py for what it does and why; multipart.py parses sibling lists;
security.py holds TLS, credentials and the rules that keep the password out
of every message.
"""

from .client import (
    IndexPage,
    RiakAuthFailed,
    RiakBadRequest,
    RiakClient,
    RiakConflict,
    RiakError,
    RiakHttpsRequired,
    RiakObject,
    RiakPermissionDenied,
    RiakRefused,
    RiakTlsError,
    RiakUnavailable,
    Sibling,
)
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
