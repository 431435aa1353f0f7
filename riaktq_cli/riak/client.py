"""A thin Riak KV HTTP client on urllib3: what a task store needs, no more.

Why our own client: the ``riak`` package on PyPI (2.7.0, 2016) does not import
on Python 3.7+, and a task store needs only a handful of calls -- fetch (with
siblings), store (with vclock, 2i and conditional create), delete, 2i queries
with pagination, and bucket properties.  Everything here follows the facts in
``docs``' RIAK_HTTP notes; the points that are easy to get wrong are:

* Each path segment is URL-encoded on its own with ``quote(seg, safe="")``:
  Riak decodes segments form-style, so ``+`` must travel as ``%2B`` and ``/``
  as ``%2F`` or the key changes on the way in.
* Vector clocks are opaque: sent back exactly as received.
* Siblings come as a ``300 Multiple Choices``; asking for
  ``multipart/mixed`` gets every sibling in one round trip.  Tombstone
  siblings are kept (flagged ``deleted``) so the caller can resolve them.
* 2i results are sorted only when paginated, so ``index_all`` always pages.
* Retries are ours, not urllib3's: reads, deletes, 2i and PUTs that carry a
  vclock are safe to repeat.  A conditional create (``If-None-Match: *``) is
  retried too, which makes it *at least once*: if the first attempt reached
  Riak but its answer was lost, the retry sees the key and gets a 412.  The
  RiakConflict raised then has ``after_retry=True`` so the store layer knows
  to re-read the object and check whether it is its own write.

Several nodes are used round-robin; a node that refuses, times out or drops
connections is skipped for a short, growing time (1 s doubling to 10 s) and
then tried again, so a restarted node rejoins without any action.

With Riak security on (see security.py), nodes are ``https://`` URLs, every
request carries basic auth, and the answers that say *no* -- 401 (who are
you?), 403 (not allowed), 426 (not over plain HTTP) and a certificate that
does not verify -- are final: another attempt or another node gives the same
answer until an operator acts, so they raise a RiakRefused at once, with one
line that says what to fix, instead of being retried like a 503.
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from .multipart import MultipartError, boundary_of, parse_multipart
from .security import Secret, TlsSettings, basic_auth, make_ssl_context, redact_url, tls_probe

__all__ = [
    "RiakError",
    "RiakUnavailable",
    "RiakConflict",
    "RiakBadRequest",
    "RiakRefused",
    "RiakAuthFailed",
    "RiakPermissionDenied",
    "RiakHttpsRequired",
    "RiakTlsError",
    "Sibling",
    "RiakObject",
    "IndexPage",
    "RiakClient",
]

log = logging.getLogger("riaktq.riak")
# A library does not print on its own: without this, Python's last-resort
# handler would put node warnings on stderr of a CLI that wants one-line errors.
log.addHandler(logging.NullHandler())
# Settings that weaken security are worth a warning even from a one-shot
# command, whose "riaktq.riak" lines are hidden: a logger of its own.
warn_log = logging.getLogger("riaktq.security")

# What we ask for on fetches and returnbody: every sibling as a part when
# there are several, and otherwise the object in whatever type it was stored
# (Riak answers 406 to an Accept its stored Content-Type does not match).
ACCEPT_SIBLINGS = "multipart/mixed, */*;q=0.5"
ACCEPT_ANY = "*/*"
ACCEPT_JSON = "application/json"
USER_AGENT = "riaktq-riak/0.1 (urllib3)"

_DOWN_FIRST = 1.0  # seconds a failing node is skipped at first ...
_DOWN_MAX = 10.0  # ... doubling per consecutive failure up to this
_SPLIT_VALUES = re.compile(r",\s")  # how Riak splits an index header's values
_UNKNOWN_TYPE = "Unknown bucket type"
_DENIED = re.compile(r"Permission denied: User '(?P<user>[^']*)' does not have "
                     r"'(?P<perm>[^']+)' on (?P<target>\S+)")


# --------------------------------------------------------------------------
# Errors


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
# Values


@dataclass
class Sibling:
    """One value of a Riak object (an object has several when siblings exist)."""

    value: bytes
    content_type: str
    indexes: dict[str, list[str]]  # field name lower-cased, e.g. {"status_bin": ["todo"]}
    deleted: bool = False  # a tombstone sibling (left by a delete)
    vtag: str | None = None
    last_modified: str | None = None  # RFC 1123, as Riak sent it
    meta: dict[str, str] = field(default_factory=dict)  # X-Riak-Meta-*, names lower-cased


@dataclass
class RiakObject:
    """A fetched object: its key, vector clock and one or more siblings."""

    key: str
    vclock: str | None  # exactly as received, to send back
    siblings: list[Sibling]  # 1 element normally; >1 when Riak returned 300

    @property
    def has_siblings(self) -> bool:
        return len(self.siblings) > 1

    @property
    def deleted(self) -> bool:
        """True when every sibling is a tombstone."""
        return all(s.deleted for s in self.siblings)

    @property
    def live_siblings(self) -> list[Sibling]:
        """The siblings that are not tombstones."""
        return [s for s in self.siblings if not s.deleted]

    def _only(self) -> Sibling:
        if len(self.siblings) != 1:
            raise ValueError(
                f"riak object {self.key!r} has {len(self.siblings)} siblings; "
                "resolve them (see .siblings) before using .value")
        return self.siblings[0]

    @property
    def value(self) -> bytes:
        return self._only().value

    @property
    def content_type(self) -> str:
        return self._only().content_type

    @property
    def indexes(self) -> dict[str, list[str]]:
        return self._only().indexes


@dataclass
class IndexPage:
    """One page of a 2i query."""

    keys: list[str]  # always filled (also when return_terms is True)
    results: list[tuple[str, str]]  # (term, key) when return_terms is True
    continuation: str | None  # pass back for the next page; None at the end


# --------------------------------------------------------------------------
# Helpers


def _seg(value: Any) -> str:
    """One URL path segment: every reserved character escaped (``/``, ``+``).

    An empty segment would change which Riak resource the path names
    (``.../keys/`` is the key *listing*), so it is refused.
    """
    text = str(value)
    if not text:
        raise ValueError("riak: bucket types, buckets, keys and 2i terms must not be empty")
    return quote(text, safe="")


def _one_line(body: bytes | str, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _latin1_to_text(value: str) -> str:
    """Undo http.client's Latin-1 header decoding when the bytes were UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _text_to_latin1(value: str) -> str:
    """Header values travel as Latin-1 in http.client; send UTF-8 bytes instead."""
    return value.encode("utf-8").decode("latin-1")


def _index_headers(indexes: dict[str, list[str] | str | int] | None) -> dict[str, str]:
    """``{"status_bin": ["todo"]}`` -> ``{"X-Riak-Index-status_bin": "todo"}``.

    Riak splits an index header's value on a comma followed by whitespace,
    so a value containing one cannot be stored faithfully: refuse it here
    rather than have it silently become two index entries.
    """
    headers: dict[str, str] = {}
    for name, values in (indexes or {}).items():
        fieldname = str(name).lower()
        if not (fieldname.endswith("_bin") or fieldname.endswith("_int")) or len(fieldname) <= 4:
            raise ValueError(f"index field {name!r} must end in _bin or _int")
        if isinstance(values, (str, int)):
            values = [values]
        texts = []
        for value in values:
            text = str(value)
            if _SPLIT_VALUES.search(text):
                raise ValueError(f"index value {text!r} of {name} contains a comma "
                                 "followed by whitespace, which Riak would split")
            if "\r" in text or "\n" in text:
                raise ValueError(f"index value {text!r} of {name} contains a line break")
            if fieldname.endswith("_int"):
                try:
                    int(text)
                except ValueError:
                    raise ValueError(f"index value {text!r} of {name} is not an integer") from None
            texts.append(text)
        if texts:
            headers["X-Riak-Index-" + fieldname] = _text_to_latin1(", ".join(texts))
    return headers


def _sibling_from_headers(pairs: list[tuple[str, str]], value: bytes, *,
                          deleted: bool = False) -> Sibling:
    """Build a Sibling from (lower-cased name, value) header pairs.

    Works for both a 200 response (one ``X-Riak-Index-F: a, b`` line per
    field) and a multipart part (one line per value): values are split on
    ``", "`` either way, which is safe because Riak itself splits on it
    when storing, so no stored value contains it.
    """
    content_type = "application/octet-stream"
    vtag = last_modified = None
    indexes: dict[str, list[str]] = {}
    meta: dict[str, str] = {}
    for name, raw in pairs:
        if name == "content-type":
            content_type = raw
        elif name == "etag":
            vtag = raw.strip().strip('"')
        elif name == "last-modified":
            last_modified = raw
        elif name == "x-riak-deleted":
            deleted = deleted or raw.strip().lower() == "true"
        elif name.startswith("x-riak-index-"):
            fieldname = name[len("x-riak-index-"):]
            bucket = indexes.setdefault(fieldname, [])
            for item in raw.split(", "):
                item = _latin1_to_text(item.strip())
                if item not in bucket:
                    bucket.append(item)
        elif name.startswith("x-riak-meta-"):
            meta[name[len("x-riak-meta-"):]] = _latin1_to_text(raw)
    return Sibling(value=value, content_type=content_type, indexes=indexes,
                   deleted=deleted, vtag=vtag, last_modified=last_modified, meta=meta)


def _reason_of(exc: BaseException) -> tuple[str, bool]:
    """A short reason for a transport failure, and whether the request may
    have reached the server (so that a retry may repeat its effect)."""
    if isinstance(exc, NameResolutionError):
        return "cannot resolve host", False
    if isinstance(exc, NewConnectionError):  # subclasses ConnectTimeoutError: test first
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused", False
        if "timed out" in text:
            return "timed out", False
        if "no route" in text or "unreachable" in text:
            return "host unreachable", False
        return "cannot connect", False
    if isinstance(exc, ConnectTimeoutError):
        return "timed out", False
    if isinstance(exc, ReadTimeoutError):
        return "timed out", True
    if isinstance(exc, (ProtocolError, ConnectionError)):
        return "connection dropped", True
    if isinstance(exc, TimeoutError):
        return "timed out", True
    return f"error ({type(exc).__name__})", True


class _Node:
    """One Riak node: its connection pool and whether it is skipped for now."""

    def __init__(self, url: str, pool: urllib3.HTTPConnectionPool):
        self.url = url
        self.pool = pool
        self.down_until = 0.0
        self.streak = 0  # consecutive transport failures
        self.reason: str | None = None  # last failure, for RiakUnavailable


def _normalize_node(node: str) -> str:
    node = node.strip().rstrip("/")
    if "://" not in node:
        node = "http://" + node
    shown = redact_url(node)
    try:
        parts = urlsplit(node)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"riak node {shown!r} is not an http(s)://host:port URL") from None
    if "@" in parts.netloc:
        raise ValueError(f"riak node {shown!r}: credentials in a node URL are not used and would "
                         "be shown in logs; set username and password_file in [riak] instead")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"riak node {shown!r} is not an http(s)://host:port URL")
    if parts.path not in ("", "/"):
        raise ValueError(f"riak node {shown!r} must not have a path")
    return node


def _ssl_error_of(exc: BaseException):
    """The ssl.SSLError behind a urllib3 error, if any (urllib3 wraps it)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLError):
            return exc
        nested = [a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]
        exc = nested[0] if nested else (exc.__cause__ or exc.__context__)
        seen += 1
    return None


def _tls_refusal(node: str, err: ssl.SSLError) -> RiakTlsError | None:
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


# --------------------------------------------------------------------------
# The client


class RiakClient:
    """Talks to one Riak KV cluster over HTTP, through any of its nodes.

    ``retries`` is the number of further attempts after the first one, spread
    over the nodes (so ``retries=4`` means at most 5 requests per call).
    ``timeout`` bounds both connecting and each read.  Safe to share between
    threads.
    """

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
        self._auth = basic_auth(username, password) if username is not None else None
        self.tls = tls or TlsSettings()
        self._ssl_context = _ssl_context
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.pool_size = max(1, int(pool_size))
        self._lock = threading.Lock()
        self._rr = 0
        self._nodes: list[_Node] = []
        seen = set()
        for raw in nodes:
            url = _normalize_node(raw)
            if url in seen:
                continue
            seen.add(url)
            self._nodes.append(_Node(url, self._make_pool(url)))
        if not _quiet:
            self._warn_weak_settings()

    def _warn_weak_settings(self) -> None:
        """Say once, at start, what weakens security: the operator chose it,
        but must not forget it.  (Credentials configured for an http:// node
        are simply not sent there; a secure node then answers 426, which
        says what to fix.)"""
        https = [n.url for n in self._nodes if n.url.startswith("https://")]
        if https and not self.tls.verify:
            warn_log.warning(
                "WARNING: riak: TLS certificate verification is OFF (verify = false): anyone on "
                "the network path can pose as %s and read the password; set ca_file instead",
                ", ".join(https))

    def _make_pool(self, url: str) -> urllib3.HTTPConnectionPool:
        # retries=False: urllib3 must neither retry nor follow redirects on
        # its own; block=False: never wait for a free connection, open one.
        extra: dict[str, Any] = {}
        if url.startswith("https://"):
            if self._ssl_context is None:
                self._ssl_context = make_ssl_context(self.tls)
                if not self.tls.verify:
                    # We warned once ourselves; urllib3 would on every request.
                    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            extra["ssl_context"] = self._ssl_context
            if not self.tls.verify:
                extra["assert_hostname"] = False
        return urllib3.connection_from_url(
            url,
            maxsize=self.pool_size,
            block=False,
            timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            retries=False,
            headers={"User-Agent": USER_AGENT},
            **extra,
        )

    def for_node(self, node: str) -> "RiakClient":
        """A client for exactly one node, with the same credentials and TLS
        and no retries: ``riaktq check`` probes each node on its own."""
        return RiakClient([node], timeout=self.timeout, retries=0, pool_size=1,
                          username=self.username, password=self._secret, tls=self.tls,
                          _ssl_context=self._ssl_context, _quiet=True)

    def tls_report(self, node: str):
        """A TlsReport of one handshake with ``node`` (None for http://)."""
        url = _normalize_node(node)
        if not url.startswith("https://"):
            return None
        ctx = self._ssl_context or make_ssl_context(self.tls)
        return tls_probe(url, ctx, self.timeout)

    @property
    def nodes(self) -> list[str]:
        return [n.url for n in self._nodes]

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> "RiakClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        for node in self._nodes:
            node.pool.close()

    # -- node choice and health --------------------------------------------

    def _pick(self) -> _Node:
        """Next node round-robin among the healthy; if none is healthy, the
        one whose down period ends first (it may be back already)."""
        now = time.monotonic()
        with self._lock:
            count = len(self._nodes)
            for i in range(count):
                node = self._nodes[(self._rr + i) % count]
                if node.down_until <= now:
                    self._rr = (self._rr + i + 1) % count
                    return node
            return min(self._nodes, key=lambda n: n.down_until)

    def _mark_ok(self, node: _Node) -> None:
        with self._lock:
            if node.down_until:
                log.info("riak node %s answers again (after %d failed request(s))", node.url, node.streak)
            node.streak = 0
            node.down_until = 0.0

    def _mark_failed(self, node: _Node, reason: str, *, skip: bool = True) -> None:
        with self._lock:
            node.streak += 1
            node.reason = reason
            if skip:
                pause = min(_DOWN_MAX, _DOWN_FIRST * 2 ** (node.streak - 1))
                if not node.down_until:
                    # once per outage of the node, not once per request
                    log.warning("riak node %s: %s; skipping it while it fails", node.url, reason)
                node.down_until = time.monotonic() + pause

    def _sleep(self, step: int) -> None:
        delay = min(self.backoff_max, self.backoff * (2 ** step))
        time.sleep(random.uniform(delay / 2, delay))

    # -- the one request loop ----------------------------------------------

    def _call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None, body: bytes | None = None,
              node: _Node | None = None) -> tuple[urllib3.BaseHTTPResponse, bool]:
        """Send a request, retrying transport failures and 503s.

        Returns the response (any status other than 503) and whether an
        earlier attempt may already have been applied by Riak.  Raises
        RiakUnavailable when every attempt failed.  With ``node`` given, only
        that node is tried, once.
        """
        url = path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        # urlopen() ignores the pool's default headers when given its own.
        send_headers = {"Accept": ACCEPT_ANY, "User-Agent": USER_AGENT}
        if headers:
            send_headers.update(headers)
        attempts = 1 if node is not None else self.retries + 1
        reasons: dict[str, str] = {}
        maybe_applied = False
        tried: set[str] = set()  # nodes tried since the last backoff pause
        sleeps = 0
        for attempt in range(attempts):
            target = node or self._pick()
            if attempt and target.url in tried:
                self._sleep(sleeps)
                sleeps += 1
                tried.clear()
            tried.add(target.url)
            headers_now = send_headers
            if self._auth and target.url.startswith("https://"):
                # Never over plain HTTP: the password would travel readable.
                headers_now = dict(send_headers, Authorization=self._auth)
            try:
                resp = target.pool.urlopen(
                    method, url, body=body, headers=headers_now, retries=False,
                    redirect=False, assert_same_host=False, preload_content=True,
                    timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
            except (HTTPError, OSError) as exc:
                tls_error = _ssl_error_of(exc)
                refusal = _tls_refusal(target.url, tls_error) if tls_error is not None else None
                if refusal is not None:
                    raise refusal from None
                reason, sent = _reason_of(exc)
                maybe_applied = maybe_applied or sent
                reasons[target.url] = reason
                # A keep-alive connection the server closed while idle shows up
                # as a drop on reuse: retry at once, skip the node only if it
                # happens again.
                first_drop = reason == "connection dropped" and target.streak == 0
                self._mark_failed(target, reason, skip=not first_drop)
                if first_drop:
                    tried.discard(target.url)
                log.debug("riak %s %s on %s: %s (attempt %d/%d)", method, url, target.url,
                          reason, attempt + 1, attempts)
                continue
            if resp.status == 503:
                # Riak is up but could not do it now (timeout, quorum): try
                # again, preferably elsewhere; the node is not skipped.
                reasons[target.url] = f"503 {resp.reason or 'Service Unavailable'}"
                with self._lock:
                    target.reason = reasons[target.url]
                maybe_applied = True  # a 503 write may still have landed somewhere
                log.debug("riak %s %s on %s: 503 %s", method, url, target.url,
                          _one_line(resp.data))
                continue
            self._mark_ok(target)
            if resp.status in (401, 403, 426):
                raise self._refusal(target.url, resp)
            return resp, maybe_applied
        # Name every node: tried ones with this call's reason, others with
        # what we last knew about them.
        report = {}
        for n in ([node] if node is not None else self._nodes):
            report[n.url] = reasons.get(n.url) or n.reason or "not tried"
        raise RiakUnavailable(report)

    def _error(self, method: str, path: str, resp: urllib3.BaseHTTPResponse,
               what: str | None = None) -> RiakError:
        """The exception for an unexpected answer, with a one-line message."""
        body = _one_line(resp.data or b"")
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

    def _refusal(self, node: str, resp: urllib3.BaseHTTPResponse) -> RiakRefused:
        """The one-line error for a 401, 403 or 426 from ``node``."""
        body = _one_line(resp.data or b"")
        status = resp.status
        if status == 426:
            return RiakHttpsRequired(f"riak: this node requires HTTPS (security is enabled): {node}",
                                     node=node, status=status, body=body)
        if status == 401:
            if self.username is None:
                text = (f"riak: authentication required at {node} (security is enabled): "
                        "set username and password_file in [riak]")
            elif not node.startswith("https://"):
                text = f"riak: authentication failed at {node}: credentials go over https:// only"
            else:
                text = f"riak: authentication failed for user '{self.username}' at {node}"
            return RiakAuthFailed(text, node=node, status=status, body=body)
        denied = _DENIED.search(body)
        if denied:
            user, perm = denied["user"], denied["perm"]
            btype = denied["target"].split("/", 1)[0]
            return RiakPermissionDenied(
                f"riak: permission denied: user '{user}' lacks {perm} on bucket type {btype}",
                node=node, user=user, permission=perm, btype=btype, body=body)
        return RiakPermissionDenied(f"riak: forbidden (403) at {node}" + (f": {body}" if body else ""),
                                    node=node, user=self.username, permission=None, btype=None,
                                    body=body)

    def _check_unknown_type(self, btype: str, resp: urllib3.BaseHTTPResponse) -> None:
        if resp.status == 404 and (resp.data or b"").startswith(_UNKNOWN_TYPE.encode()):
            raise RiakError(f"riak: bucket type {btype} does not exist",
                            status=404, body=_one_line(resp.data))

    # -- paths ---------------------------------------------------------------

    @staticmethod
    def _bucket_path(btype: str, bucket: str) -> str:
        return f"/types/{_seg(btype)}/buckets/{_seg(bucket)}"

    def _key_path(self, btype: str, bucket: str, key: str) -> str:
        return f"{self._bucket_path(btype, bucket)}/keys/{_seg(key)}"

    # -- health ----------------------------------------------------------------

    def ping(self) -> None:
        """Succeed if any node answers ``GET /ping``; else RiakUnavailable."""
        resp, _ = self._call("GET", "/ping")
        if resp.status != 200:
            raise self._error("GET", "/ping", resp)

    def ping_node(self, node: str) -> None:
        """Ping exactly one node, once (no retry): for health reports.

        Raises RiakUnavailable naming the node when it does not answer, and
        RiakError when it answers anything but 200.
        """
        url = _normalize_node(node)
        known = next((n for n in self._nodes if n.url == url), None)
        target = known or _Node(url, self._make_pool(url))
        try:
            resp, _ = self._call("GET", "/ping", node=target)
        finally:
            if known is None:
                target.pool.close()
        if resp.status != 200:
            raise self._error("GET", f"{url}/ping", resp)

    # -- objects -------------------------------------------------------------

    def _object_from(self, key: str, resp: urllib3.BaseHTTPResponse, btype: str,
                     bucket: str) -> RiakObject:
        """A RiakObject from a 200 or 300 answer (fetch or returnbody)."""
        vclock = resp.headers.get("X-Riak-Vclock")
        if resp.status == 200:
            pairs = [(k.lower(), v) for k, v in resp.headers.items()]
            return RiakObject(key, vclock, [_sibling_from_headers(pairs, resp.data)])
        ctype = resp.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/mixed"):
            boundary = boundary_of(ctype)
            try:
                parts = parse_multipart(resp.data, boundary or "")
            except MultipartError as exc:
                raise RiakError(f"riak: bad sibling list for key {key!r}: {exc}") from None
            siblings = [_sibling_from_headers(p.headers, p.body) for p in parts]
            if not siblings:
                raise RiakError(f"riak: empty sibling list for key {key!r}")
            return RiakObject(key, vclock, siblings)
        # text/plain "Siblings:\nvtag\n...": a proxy or an old node ignored
        # our Accept; fetch the siblings one by one.
        return self._fetch_by_vtags(btype, bucket, key, vclock, resp.data)

    def _fetch_by_vtags(self, btype: str, bucket: str, key: str, vclock: str | None,
                        listing: bytes) -> RiakObject:
        lines = listing.decode("latin-1").splitlines()
        vtags = [ln.strip() for ln in lines[1:] if ln.strip()] if lines[:1] == ["Siblings:"] else []
        if not vtags:
            raise RiakError(f"riak: unreadable sibling list for key {key!r}")
        path = self._key_path(btype, bucket, key)
        siblings = []
        for vtag in vtags:
            resp, _ = self._call("GET", path, query={"vtag": vtag})
            if resp.status != 200:
                # The object changed under us; the caller's next fetch sees it.
                raise RiakError(f"riak: siblings of key {key!r} changed while being read",
                                status=resp.status)
            pairs = [(k.lower(), v) for k, v in resp.headers.items()]
            siblings.append(_sibling_from_headers(pairs, resp.data))
        return RiakObject(key, vclock, siblings)

    def fetch(self, btype: str, bucket: str, key: str, *,
              include_tombstone: bool = False) -> RiakObject | None:
        """The object at ``key``, all siblings included; None when not found.

        A tombstone (a deleted key not yet reaped) is also None, unless
        ``include_tombstone`` is set: then it is an object with one deleted
        sibling and the tombstone's vclock, which is the clock to send when
        re-creating the key (without it, the new value and the tombstone
        become siblings).
        """
        path = self._key_path(btype, bucket, key)
        resp, _ = self._call("GET", path, headers={"Accept": ACCEPT_SIBLINGS})
        if resp.status in (200, 300):
            return self._object_from(key, resp, btype, bucket)
        if resp.status == 404:
            self._check_unknown_type(btype, resp)
            vclock = resp.headers.get("X-Riak-Vclock")
            if include_tombstone and vclock and resp.headers.get("X-Riak-Deleted") == "true":
                return RiakObject(key, vclock, [Sibling(b"", "application/octet-stream", {},
                                                        deleted=True)])
            return None
        raise self._error("GET", path, resp)

    def store(self, btype: str, bucket: str, key: str, value: bytes,
              content_type: str = "application/json", *, vclock: str | None = None,
              indexes: dict[str, list[str] | str] | None = None,
              if_none_match: bool = False, returnbody: bool = False) -> RiakObject | None:
        """Write ``value`` at ``key``; every write replaces the index set.

        ``vclock``: the clock of the version this write supersedes (from a
        fetch); without it an allow_mult bucket keeps the old value as a
        sibling.  ``if_none_match``: create only -- RiakConflict when the key
        exists (see the module notes on retries).  ``returnbody``: return the
        object as stored, siblings included.
        """
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("riak: store() takes the value as bytes")
        path = self._key_path(btype, bucket, key)
        headers = {"Content-Type": content_type,
                   "Accept": ACCEPT_SIBLINGS if returnbody else ACCEPT_ANY}
        headers.update(_index_headers(indexes))
        if vclock:
            headers["X-Riak-Vclock"] = vclock
        if if_none_match:
            headers["If-None-Match"] = "*"
        query = {"returnbody": "true"} if returnbody else None
        resp, maybe_applied = self._call("PUT", path, query=query, headers=headers,
                                         body=bytes(value))
        if resp.status in (200, 204, 201):
            if returnbody and resp.status == 200:
                return self._object_from(key, resp, btype, bucket)
            return None
        if resp.status == 300 and returnbody:
            return self._object_from(key, resp, btype, bucket)
        if resp.status in (409, 412):
            what = "exists" if if_none_match else "was changed by someone else"
            raise RiakConflict(f"riak: key {key!r} in {btype}/{bucket} {what} "
                               f"({resp.status} {resp.reason})", status=resp.status,
                               body=_one_line(resp.data or b""), after_retry=maybe_applied)
        self._check_unknown_type(btype, resp)
        raise self._error("PUT", path, resp)

    def delete(self, btype: str, bucket: str, key: str, vclock: str | None = None) -> None:
        """Delete ``key`` (leaves a tombstone in Riak); a missing key is fine.

        With ``vclock``, only the versions that clock has seen are deleted: a
        concurrent write survives as a sibling next to the tombstone.
        """
        path = self._key_path(btype, bucket, key)
        headers = {"X-Riak-Vclock": vclock} if vclock else None
        resp, _ = self._call("DELETE", path, headers=headers)
        if resp.status in (200, 204):
            return
        if resp.status == 404:
            self._check_unknown_type(btype, resp)
            return
        raise self._error("DELETE", path, resp)

    # -- secondary indexes ----------------------------------------------------

    def index(self, btype: str, bucket: str, field: str, value: Any = None, *,
              start: Any = None, end: Any = None, max_results: int | None = None,
              continuation: str | None = None, return_terms: bool = False,
              sort: bool = False) -> IndexPage:
        """One 2i query: exact (``value``) or range (``start``..``end``, inclusive).

        Riak sorts the results only when paginating (``max_results`` or
        ``continuation`` given) or when ``sort`` asks for it: ranges by term
        then key, exact matches by key.  ``return_terms`` fills ``results``
        with (term, key) pairs; Riak returns terms only for ranges, so for an
        exact query the term is the queried value, and for ``$key`` the key.
        """
        is_range = start is not None or end is not None
        if is_range == (value is not None) or (is_range and (start is None or end is None)):
            raise ValueError("riak: give either value, or both start and end")
        if max_results is not None and int(max_results) <= 0:
            raise ValueError("riak: max_results must be positive")
        fieldname = str(field)
        lower = fieldname.lower()
        if lower not in ("$key", "$bucket") and not lower.endswith(("_bin", "_int")):
            raise ValueError(f"riak: index field {field!r} must end in _bin or _int")
        path = f"{self._bucket_path(btype, bucket)}/index/{_seg(fieldname)}"
        path += f"/{_seg(start)}/{_seg(end)}" if is_range else f"/{_seg(value)}"
        query: dict[str, Any] = {}
        if max_results is not None:
            query["max_results"] = int(max_results)
        if continuation:
            query["continuation"] = continuation
        if return_terms:
            query["return_terms"] = "true"
        if sort and max_results is None and not continuation:
            query["pagination_sort"] = "true"
        resp, _ = self._call("GET", path, query=query, headers={"Accept": ACCEPT_JSON})
        if resp.status == 404:
            raise RiakError(f"riak: bucket type {btype} does not exist "
                            f"(404 on a 2i query of {btype}/{bucket})", status=404)
        if resp.status != 200:
            raise self._error("GET", path, resp, what=f"2i query {field} on {btype}/{bucket}")
        try:
            doc = json.loads(resp.data)
        except ValueError:
            raise RiakError(f"riak: 2i query {field} on {btype}/{bucket}: "
                            f"answer is not JSON: {_one_line(resp.data)}") from None
        next_page = doc.get("continuation") or None
        if "results" in doc:
            results = []
            for item in doc["results"]:
                for term, key in item.items():
                    results.append((str(term), key))
            return IndexPage([k for _, k in results], results if return_terms else [], next_page)
        keys = list(doc.get("keys", []))
        results = []
        if return_terms:
            if is_range:  # only $key ranges come back without terms
                results = [(k, k) for k in keys]
            else:
                results = [(str(value), k) for k in keys]
        return IndexPage(keys, results, next_page)

    def index_all(self, btype: str, bucket: str, field: str, value: Any = None, *,
                  start: Any = None, end: Any = None, page_size: int = 1000,
                  return_terms: bool = False) -> Iterator[Any]:
        """Every match of a 2i query, page by page, in Riak's sorted order.

        Yields keys, or (term, key) tuples with ``return_terms``.  Always
        passes ``max_results`` so that Riak sorts and continuations are
        stable.  On a range, one key appears once per matching term (an
        object with siblings can carry several).
        """
        if page_size <= 0:
            raise ValueError("riak: page_size must be positive")
        continuation = None
        while True:
            page = self.index(btype, bucket, field, value, start=start, end=end,
                              max_results=page_size, continuation=continuation,
                              return_terms=return_terms)
            if return_terms:
                yield from page.results
            else:
                yield from page.keys
            if not page.continuation:
                return
            if page.continuation == continuation:
                raise RiakError(f"riak: 2i query {field} on {btype}/{bucket} "
                                "repeated its continuation")
            continuation = page.continuation

    # -- properties ------------------------------------------------------------

    def _get_props(self, btype: str, path: str) -> dict:
        resp, _ = self._call("GET", path, headers={"Accept": ACCEPT_JSON})
        if resp.status == 404:
            raise RiakError(f"riak: bucket type {btype} does not exist", status=404)
        if resp.status != 200:
            raise self._error("GET", path, resp)
        return json.loads(resp.data)["props"]

    def bucket_props(self, btype: str, bucket: str) -> dict:
        """The bucket's properties (its type's defaults plus its own settings)."""
        return self._get_props(btype, self._bucket_path(btype, bucket) + "/props")

    def set_bucket_props(self, btype: str, bucket: str, props: dict) -> None:
        """Change some properties of a bucket (the others are left as they are)."""
        path = self._bucket_path(btype, bucket) + "/props"
        body = json.dumps({"props": props}).encode()
        resp, _ = self._call("PUT", path, headers={"Content-Type": "application/json"},
                             body=body)
        if resp.status in (200, 204):
            return
        if resp.status == 404:
            raise RiakError(f"riak: bucket type {btype} does not exist", status=404)
        raise self._error("PUT", path, resp)

    def type_props(self, btype: str) -> dict:
        """A bucket type's properties; RiakError when the type does not exist
        (types are created only with ``riak admin bucket-type create``)."""
        return self._get_props(btype, f"/types/{_seg(btype)}/props")
