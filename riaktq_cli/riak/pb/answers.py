"""What an RpbErrorResp means: a refusal (final), "busy" (retry elsewhere), or a request error.

Riak's PB errors carry no status, only a text (often an Erlang term printed as text); the
texts below are the ones Riak KV 3.2 sends (../shared/riak-pb-transcripts). The refusals get
the same one-line messages and exception classes as their HTTP counterparts (errors.py), so
the store and ``riaktq check`` need not know which API was used.
"""

from __future__ import annotations

from ..errors import (RiakAuthFailed, RiakBadRequest, RiakError, RiakHttpsRequired, RiakRefused,
                      RiakTlsError, one_line, permission_denied)
from .connection import CRASH_PREFIX

STARTTLS_FIRST = "Security is enabled, please STARTTLS first"
AUTHENTICATE_FIRST = "Security is enabled, please authenticate first"
AUTH_FAILED = "Authentication failed"
NO_SECURITY = "Security not enabled; STARTTLS not allowed."

# Riak is up but could not do it now: the PB counterparts of HTTP's 503.
_BUSY_WORDS = ("timeout", "overload", "insufficient_vnodes", "all_nodes_down",
               "r_val_unsatisfied", "w_val_unsatisfied", "dw_val_unsatisfied",
               "pr_val_unsatisfied", "pw_val_unsatisfied")


# A stopping node deregisters riak_kv's PB services first (riak_kv_app:prep_stop), so it
# answers every KV request with this while ping still works: the PB analogue of the HTML 404
# a stopping node's web server gives. The request was not applied.
STOPPING = "Unknown message code:"


def is_stopping(text: str) -> bool:
    """A node that no longer serves KV requests (shutting down): try another, skip it."""
    return text.startswith(STOPPING)


def is_busy(text: str) -> bool:
    """A transient refusal: the same request may work now on another node, or later."""
    head = text.lstrip("{")
    return any(head.startswith(word) for word in _BUSY_WORDS)


def refusal_of(node: str, text: str, username: str | None) -> RiakRefused | None:
    """The final error for a security answer from ``node``; None for any other answer."""
    if text.startswith(STARTTLS_FIRST):
        tls_url = "pbs://" + node.split("://", 1)[-1]
        return RiakHttpsRequired(f"riak: this node requires TLS (security is enabled): use "
                                 f"{tls_url} instead of {node}", node=node, body=text)
    if text.startswith(AUTHENTICATE_FIRST):
        return RiakAuthFailed(f"riak: authentication required at {node} (security is enabled): "
                              "set username and password_file in [riak]", node=node, body=text)
    if text.startswith(AUTH_FAILED):
        return RiakAuthFailed(f"riak: authentication failed for user '{username}' at {node}",
                              node=node, body=text)
    if text.startswith(NO_SECURITY):
        plain_url = "pb://" + node.split("://", 1)[-1]
        return RiakTlsError(f"riak: {node} has security off, so it offers no TLS on PB: use "
                            f"{plain_url} (or turn Riak security on)", node=node, body=text)
    return permission_denied(node, text)


def unknown_type(text: str) -> bool:
    """Riak's answers for a bucket type that does not exist (object calls, props)."""
    return (text == "no_type" or text.startswith("No bucket-type named")
            or text.startswith("Invalid bucket type"))


def request_error(what: str, text: str, btype: str | None = None) -> RiakError:
    """The one-line error for an answer that is neither a refusal nor busy."""
    if btype is not None and unknown_type(text):
        return RiakError(f"riak: bucket type {btype} does not exist", body=one_line(text))
    if text.startswith(CRASH_PREFIX):
        # ~10 KB of Erlang stack trace: keep the reason's first words only.
        return RiakBadRequest(f"riak: {what}: the node could not process the request "
                              f"({one_line(text[len(CRASH_PREFIX):].lstrip(': '), 120)})",
                              body=one_line(text))
    if "indexes_not_supported" in text:
        return RiakError(f"riak: {what}: the storage backend has no secondary indexes "
                         "(indexes_not_supported); use the leveled or leveldb backend",
                         body=one_line(text))
    return RiakBadRequest(f"riak: {what}: {one_line(text)}", body=one_line(text))
