"""The Riak client's errors, and how an answer or a handshake becomes one.

Every error's str() is ONE line, because the command prints it as the one
line a user sees.  The refusals (401, 403, 426, a certificate that does not
verify) are a family of their own: retrying or failing over cannot help, so
the transport raises them at once instead of retrying like a 503.
"""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit

import urllib3

_UNKNOWN_TYPE = "Unknown bucket type"
_DENIED = re.compile(r"Permission denied: User '(?P<user>[^']*)' does not have "
                     r"'(?P<perm>[^']+)' on (?P<target>\S+)")


class RiakError(Exception):
    """Any Riak failure; str() is ONE clear line.

    ``status`` is the HTTP status when Riak answered (None otherwise) and
    ``body`` the start of its answer, for logs and tests.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(" ".join(message.split()))  # one line, always
        self.status = status
        self.body = body


class RiakUnavailable(RiakError):
    """No node answered.

    str: ``riak: no node answered (http://127.0.0.1:8098: connection
    refused)`` -- each node and its last reason, ``; ``-separated.
    ``reasons`` maps node URL -> reason.
    """

    def __init__(self, reasons: dict[str, str]):
        self.reasons = dict(reasons)
        detail = "; ".join(f"{node}: {why}" for node, why in self.reasons.items())
        super().__init__(f"riak: no node answered ({detail})")


class RiakConflict(RiakError):
    """412 from ``If-None-Match: *`` (key exists) or ``If-Match``, or 409 from
    ``X-Riak-If-Not-Modified``.

    ``after_retry`` is True when an earlier attempt of the same call may have
    been applied before its answer was lost (timeout, dropped connection):
    the conflict may then be with our own write.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str = "",
                 after_retry: bool = False):
        super().__init__(message, status=status, body=body)
        self.after_retry = after_retry


class RiakBadRequest(RiakError):
    """A 4xx answer other than 404/409/412: our request was wrong.

    The message carries the status and the first line of Riak's body, which
    names the bad parameter or header.
    """


class RiakRefused(RiakError):
    """Riak, or the TLS in front of it, said no: final, not retried.

    ``node`` is the node's URL (never with userinfo).  Retrying or failing
    over cannot help -- every node shares the security settings -- until an
    operator fixes credentials, grants, the URL or the CA.
    """

    def __init__(self, message: str, *, node: str, status: int | None = None, body: str = ""):
        super().__init__(message, status=status, body=body)
        self.node = node


class RiakAuthFailed(RiakRefused):
    """401: no, wrong or unknown credentials (Riak does not say which)."""


class RiakPermissionDenied(RiakRefused):
    """403: the user lacks ``permission`` on bucket type ``btype``."""

    def __init__(self, message: str, *, node: str, user: str | None, permission: str | None,
                 btype: str | None, status: int = 403, body: str = ""):
        super().__init__(message, node=node, status=status, body=body)
        self.user, self.permission, self.btype = user, permission, btype


class RiakHttpsRequired(RiakRefused):
    """426: security is enabled and the request came over plain HTTP."""


class RiakTlsError(RiakRefused):
    """The TLS handshake failed: certificate not trusted, expired, for
    another host, or the node is not speaking TLS on that port."""


# --------------------------------------------------------------------------
# From an answer to an error


def one_line(body: bytes | str, limit: int = 200) -> str:
    """The start of an answer's body as one line, for messages and logs."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unexpected(method: str, path: str, resp: urllib3.BaseHTTPResponse,
               what: str | None = None) -> RiakError:
    """The exception for an unexpected answer, with a one-line message."""
    body = one_line(resp.data or b"")
    status = resp.status
    label = f"{status} {resp.reason}".strip() if resp.reason else str(status)
    where = what or f"{method} {path}"
    text = f"riak: {where}: {label}" + (f": {body}" if body else "")
    if status == 500 and "indexes_not_supported" in body:
        text = (f"riak: {where}: the storage backend has no secondary indexes "
                f"(indexes_not_supported); use the leveled or leveldb backend")
    if 400 <= status < 500 and status not in (404, 409, 412):
        return RiakBadRequest(text, status=status, body=body)
    return RiakError(text, status=status, body=body)


# Riak's own 404s (riak_kv_wm_object, transcripts 01, 07): text/plain
# "not found\n" -- with X-Riak-Vclock and X-Riak-Deleted on a tombstone --
# or "Unknown bucket type: T".  Everything else that says 404 comes from
# webmachine itself: the page it renders when no resource matches the path.
# A node that is stopping has removed every riak_kv route (riak_kv_app
# prep_stop) and answers that page to every request, /ping included, for
# as long as it waits for its last writes; a node still starting does too.
_RIAK_404_BODIES = (b"not found", _UNKNOWN_TYPE.encode())


def answer_kind(path: str, resp: urllib3.BaseHTTPResponse) -> str:
    """``"riak"`` for an answer Riak itself gave, ``"node"`` for one that
    only says the node does not serve Riak now (stopping or starting), and
    ``"ask"`` for webmachine's 404 page on a path where Riak gives it too.

    Only a 404 can be a node's: every other status passes as Riak's (a 503
    is retried anyway; 401/403/426 are final refusals)."""
    if resp.status != 404:
        return "riak"
    body = resp.data or b""
    if body.startswith(_RIAK_404_BODIES) or resp.headers.get("X-Riak-Vclock"):
        return "riak"
    # A *serving* Riak also answers webmachine's page for an unknown bucket
    # type on 2i and props (transcripts 06 and 07): /types/T/props,
    # /types/T/buckets/B/props, /types/T/buckets/B/index/... (segments are
    # percent-encoded, so a key never adds one).
    segs = path.split("?", 1)[0].split("/")
    if segs[3:4] == ["props"] or segs[5:6] in (["props"], ["index"]):
        return "ask"
    return "node"


def check_unknown_type(btype: str, resp: urllib3.BaseHTTPResponse) -> None:
    """Riak answers 404 both for a missing key and a missing bucket type;
    only the body tells them apart, and the second is a setup error."""
    if resp.status == 404 and (resp.data or b"").startswith(_UNKNOWN_TYPE.encode()):
        raise RiakError(f"riak: bucket type {btype} does not exist",
                        status=404, body=one_line(resp.data))


def permission_denied(node: str, text: str) -> RiakPermissionDenied | None:
    """Riak's "Permission denied: User 'u' does not have 'p' on type/bucket" (the body of
    an HTTP 403, or a PB error) as its one line; None for any other text."""
    denied = _DENIED.search(text)
    if not denied:
        return None
    user, perm = denied["user"], denied["perm"]
    btype = denied["target"].split("/", 1)[0]
    return RiakPermissionDenied(
        f"riak: permission denied: user '{user}' lacks {perm} on bucket type {btype}",
        node=node, user=user, permission=perm, btype=btype, body=one_line(text))


def refusal(node: str, resp: urllib3.BaseHTTPResponse, username: str | None) -> RiakRefused:
    """The one-line error for a 401, 403 or 426 from ``node``."""
    body = one_line(resp.data or b"")
    status = resp.status
    if status == 426:
        return RiakHttpsRequired(f"riak: this node requires HTTPS (security is enabled): {node}",
                                 node=node, status=status, body=body)
    if status == 401:
        if username is None:
            text = (f"riak: authentication required at {node} (security is enabled): "
                    "set username and password_file in [riak]")
        elif not node.startswith("https://"):
            text = f"riak: authentication failed at {node}: credentials go over https:// only"
        else:
            text = f"riak: authentication failed for user '{username}' at {node}"
        return RiakAuthFailed(text, node=node, status=status, body=body)
    denied = permission_denied(node, body)
    if denied is not None:
        return denied
    return RiakPermissionDenied(f"riak: forbidden (403) at {node}" + (f": {body}" if body else ""),
                                node=node, user=username, permission=None, btype=None, body=body)


# --------------------------------------------------------------------------
# From a failed handshake to an error


def ssl_error_of(exc: BaseException):
    """The ssl.SSLError behind a urllib3 error, if any (urllib3 wraps it)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLError):
            return exc
        nested = [a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]
        exc = nested[0] if nested else (exc.__cause__ or exc.__context__)
        seen += 1
    return None


def tls_refusal(node: str, err: ssl.SSLError) -> RiakTlsError | None:
    """A final error for a handshake that failed on the certificate or the
    protocol; None for a connection lost mid-handshake (a transport failure,
    retried like any other)."""
    if isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)):
        return None
    host = urlsplit(node).hostname
    if isinstance(err, ssl.SSLCertVerificationError):
        code = err.verify_code
        if code == 10:
            text = f"riak: certificate of {node} has expired"
        elif code == 62:
            text = f"riak: certificate of {node} is not for host {host}"
        else:
            text = f"riak: certificate of {node} not trusted (set ca_file)"
        return RiakTlsError(text, node=node, body=err.verify_message or "")
    reason = err.reason or type(err).__name__
    hint = ": is this an HTTPS port?" if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE") else ""
    return RiakTlsError(f"riak: TLS handshake with {node} failed ({reason}{hint})", node=node)
