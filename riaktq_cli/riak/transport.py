"""How a request reaches Riak: nodes, connection pools, retries, credentials.

Retries are ours, not urllib3's: reads, deletes, 2i and PUTs that carry a
vclock are safe to repeat.  A conditional create (``If-None-Match: *``) is
retried too, which makes it *at least once*: the transport reports whether
an earlier attempt may already have been applied, so the object layer can
flag the 412 the retry then gets (RiakConflict.after_retry).

Several nodes are used round-robin; a node that refuses, times out or drops
connections is skipped for a short, growing time (1 s doubling to 10 s) and
then tried again, so a restarted node rejoins without any action.  A 503
(Riak up but unable to do it now) is retried elsewhere without skipping the
node.  The answers that say *no* -- 401, 403, 426 and a certificate that
does not verify -- are final and raised at once (see errors.py).

A 404 is final only when Riak gave it (errors.answer_kind): a node that is
stopping (or still starting) answers webmachine's own 404 page to every
request for a while before it refuses connections, and that page is no
"not found" -- the request never reached Riak.  Such a node is skipped like
one that refuses, the request goes to another node, and when none serves it
the call raises RiakUnavailable, as for a cluster that is down.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
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

from .errors import RiakUnavailable, answer_kind, one_line, refusal, ssl_error_of, tls_refusal
from .security import Secret, TlsSettings, basic_auth, make_ssl_context, redact_url

log = logging.getLogger("riaktq.riak")
# A library does not print on its own: without this, Python's last-resort
# handler would put node warnings on stderr of a CLI that wants one-line errors.
log.addHandler(logging.NullHandler())
# Settings that weaken security are worth a warning even from a one-shot
# command, whose "riaktq.riak" lines are hidden: a logger of its own.
warn_log = logging.getLogger("riaktq.security")

ACCEPT_ANY = "*/*"
USER_AGENT = "riaktq-riak/0.1 (urllib3)"

_DOWN_FIRST = 1.0  # seconds a failing node is skipped at first ...
_DOWN_MAX = 10.0  # ... doubling per consecutive failure up to this


# --------------------------------------------------------------------------
# Addresses


def seg(value: Any) -> str:
    """One URL path segment: every reserved character escaped (``/``, ``+``).

    Riak decodes segments form-style, so ``+`` must travel as ``%2B`` and
    ``/`` as ``%2F`` or the key changes on the way in.  An empty segment
    would change which Riak resource the path names (``.../keys/`` is the
    key *listing*), so it is refused.
    """
    text = str(value)
    if not text:
        raise ValueError("riak: bucket types, buckets, keys and 2i terms must not be empty")
    return quote(text, safe="")


def bucket_path(btype: str, bucket: str) -> str:
    return f"/types/{seg(btype)}/buckets/{seg(bucket)}"


def key_path(btype: str, bucket: str, key: str) -> str:
    return f"{bucket_path(btype, bucket)}/keys/{seg(key)}"


def normalize_node(node: str) -> str:
    """``host:port`` or a URL -> ``http(s)://host:port``; ValueError, never
    showing a password, for anything else."""
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


# --------------------------------------------------------------------------
# Nodes and failures


def reason_of(exc: BaseException) -> tuple[str, bool]:
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


class Node:
    """One Riak node: its connection pool and whether it is skipped for now."""

    def __init__(self, url: str, pool: urllib3.HTTPConnectionPool):
        self.url = url
        self.pool = pool
        self.down_until = 0.0
        self.streak = 0  # consecutive transport failures
        self.reason: str | None = None  # last failure, for RiakUnavailable


@dataclass
class _Attempts:
    """What one call has learnt so far, across its attempts."""

    reasons: dict[str, str] = field(default_factory=dict)
    maybe_applied: bool = False
    tried: set[str] = field(default_factory=set)  # nodes tried since the last backoff pause
    sleeps: int = 0


# --------------------------------------------------------------------------
# The transport


class Transport:
    """Sends requests to any node of one cluster; safe to share between threads.

    ``retries`` is the number of further attempts after the first one, spread
    over the nodes (so ``retries=4`` means at most 5 requests per call).
    ``timeout`` bounds both connecting and each read.
    """

    normalize = staticmethod(normalize_node)  # a node as given -> its URL (ValueError if bad)
    TLS_SCHEME = "https://"

    def __init__(self, nodes: list[str], *, timeout: float, retries: int, backoff: float,
                 backoff_max: float, pool_size: int, username: str | None,
                 password: Secret | None, tls: TlsSettings,
                 ssl_context: ssl.SSLContext | None, quiet: bool):
        self.username = username
        self._auth = basic_auth(username, password) if username is not None else None
        self.tls = tls
        self.ssl_context = ssl_context
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.pool_size = max(1, int(pool_size))
        self._lock = threading.Lock()
        self._rr = 0
        self.nodes: list[Node] = []
        for url in dict.fromkeys(self.normalize(raw) for raw in nodes):
            self.nodes.append(Node(url, self._make_pool(url)))
        if not quiet:
            self._warn_weak_settings()

    def _warn_weak_settings(self) -> None:
        """Say once, at start, what weakens security: the operator chose it,
        but must not forget it.  (Credentials configured for an http:// node
        are simply not sent there; a secure node then answers 426, which
        says what to fix.)"""
        https = [n.url for n in self.nodes if n.url.startswith(self.TLS_SCHEME)]
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
            if self.ssl_context is None:
                self.ssl_context = make_ssl_context(self.tls)
                if not self.tls.verify:
                    # We warned once ourselves; urllib3 would on every request.
                    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            extra["ssl_context"] = self.ssl_context
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

    def close(self) -> None:
        """Close every pooled connection."""
        for node in self.nodes:
            node.pool.close()

    # -- node choice and health --------------------------------------------

    def _pick(self) -> Node:
        """Next node round-robin among the healthy; if none is healthy, the
        one whose down period ends first (it may be back already)."""
        now = time.monotonic()
        with self._lock:
            count = len(self.nodes)
            for i in range(count):
                node = self.nodes[(self._rr + i) % count]
                if node.down_until <= now:
                    self._rr = (self._rr + i + 1) % count
                    return node
            return min(self.nodes, key=lambda n: n.down_until)

    def _mark_ok(self, node: Node) -> None:
        with self._lock:
            if node.down_until:
                log.info("riak node %s answers again (after %d failed request(s))", node.url, node.streak)
            node.streak = 0
            node.down_until = 0.0

    def _mark_failed(self, node: Node, reason: str, *, skip: bool = True) -> None:
        with self._lock:
            node.streak += 1
            node.reason = reason
            if skip:
                pause = min(_DOWN_MAX, _DOWN_FIRST * 2 ** (node.streak - 1))
                if not node.down_until:
                    # once per outage of the node, not once per request
                    log.warning("riak node %s: %s; skipping it while it fails", node.url, reason)
                node.down_until = time.monotonic() + pause

    def _pause_after_a_round(self, state: _Attempts, target: Node, attempt: int) -> None:
        """Back off only once every node has had its turn: a second node
        may answer at once where the first failed."""
        if attempt and target.url in state.tried:
            delay = min(self.backoff_max, self.backoff * (2 ** state.sleeps))
            time.sleep(random.uniform(delay / 2, delay))
            state.sleeps += 1
            state.tried.clear()
        state.tried.add(target.url)

    # -- the one request loop ----------------------------------------------

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, body: bytes | None = None,
             node: Node | None = None) -> tuple[urllib3.BaseHTTPResponse, bool]:
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
        state = _Attempts()
        for attempt in range(attempts):
            target = node or self._pick()
            self._pause_after_a_round(state, target, attempt)
            try:
                resp = self._send(target, method, url, send_headers, body)
            except (HTTPError, OSError) as exc:
                self._transport_failed(state, target, exc)
                log.debug("riak %s %s on %s: %s (attempt %d/%d)", method, url, target.url,
                          state.reasons[target.url], attempt + 1, attempts)
                continue
            if resp.status == 503:
                self._busy(state, target, resp)
                log.debug("riak %s %s on %s: 503 %s", method, url, target.url,
                          one_line(resp.data))
                continue
            if not self._serving(target, path, resp):
                self._not_serving(state, target)
                log.debug("riak %s %s on %s: 404 not from Riak (node stopping?)", method, url,
                          target.url)
                continue
            self._mark_ok(target)
            if resp.status in (401, 403, 426):
                raise refusal(target.url, resp, self.username)
            return resp, state.maybe_applied
        # Name every node: tried ones with this call's reason, others with
        # what we last knew about them.
        report = {}
        for n in ([node] if node is not None else self.nodes):
            report[n.url] = state.reasons.get(n.url) or n.reason or "not tried"
        raise RiakUnavailable(report)

    def _send(self, target: Node, method: str, url: str, headers: dict[str, str],
              body: bytes | None) -> urllib3.BaseHTTPResponse:
        if self._auth and target.url.startswith("https://"):
            # Never over plain HTTP: the password would travel readable.
            headers = dict(headers, Authorization=self._auth)
        return target.pool.urlopen(
            method, url, body=body, headers=headers, retries=False,
            redirect=False, assert_same_host=False, preload_content=True,
            timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))

    def _transport_failed(self, state: _Attempts, target: Node, exc: BaseException) -> None:
        """Note a failure to get any answer; a failed handshake is final."""
        tls_error = ssl_error_of(exc)
        final = tls_refusal(target.url, tls_error) if tls_error is not None else None
        if final is not None:
            raise final from None
        reason, sent = reason_of(exc)
        state.maybe_applied = state.maybe_applied or sent
        state.reasons[target.url] = reason
        # A keep-alive connection the server closed while idle shows up
        # as a drop on reuse: retry at once, skip the node only if it
        # happens again.
        first_drop = reason == "connection dropped" and target.streak == 0
        self._mark_failed(target, reason, skip=not first_drop)
        if first_drop:
            state.tried.discard(target.url)

    def _serving(self, target: Node, path: str, resp: urllib3.BaseHTTPResponse) -> bool:
        """Whether the answer is Riak's own, not a node's that is not serving
        Riak (see the module docstring).  Webmachine's 404 page on a path
        where Riak gives it too (an unknown bucket type on 2i or props) is
        Riak's only if the same node answers /ping: a stopping node has
        lost that route with the others."""
        kind = answer_kind(path, resp)
        if kind != "ask":
            return kind == "riak"
        try:
            ping = self._send(target, "GET", "/ping", {"Accept": ACCEPT_ANY, "User-Agent": USER_AGENT},
                              None)
        except (HTTPError, OSError):
            return False
        return ping.status == 200

    def _not_serving(self, state: _Attempts, target: Node) -> None:
        """The node answered, but not as Riak: skip it like a node that
        refuses.  Nothing was applied (no Riak resource saw the request)."""
        reason = "not serving Riak (webmachine's 404 page: stopping or starting?)"
        state.reasons[target.url] = reason
        self._mark_failed(target, reason)

    def _busy(self, state: _Attempts, target: Node, resp: urllib3.BaseHTTPResponse) -> None:
        """Riak is up but could not do it now (timeout, quorum): try again,
        preferably elsewhere; the node is not skipped."""
        state.reasons[target.url] = f"503 {resp.reason or 'Service Unavailable'}"
        with self._lock:
            target.reason = state.reasons[target.url]
        state.maybe_applied = True  # a 503 write may still have landed somewhere
