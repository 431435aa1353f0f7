"""How a PB request reaches Riak: per-node pools of authenticated connections, retries, failover.

The rules are HTTP's (../transport.py), and the node bookkeeping is shared with it: nodes are
used round-robin; a node that refuses connections, times out or drops them is skipped for a
short, growing time; a "busy" answer (``timeout``, ``overload``, unsatisfied quorum -- HTTP's
503) is retried elsewhere without skipping the node; refusals (TLS needed, wrong password, no
permission, a certificate that does not verify) are final and raised at once.

"May have landed": a request whose connection broke or timed out after it was sent, or that
got a busy answer, may have been applied; the caller learns it (``maybe_applied``) so a
conditional create can flag the conflict its retry then gets (RiakConflict.after_retry).

What PB adds: a connection is set up once -- TCP, then for ``pbs://`` RpbStartTls, the TLS
handshake and RpbAuthReq -- and then kept in its node's pool for the next request. With
security on, that one authentication (~0.3 s on a real node) replaces HTTPS's password check
on every request. A pool keeps up to ``pool_size`` idle connections per node (``[riak]
concurrency``); a thread that finds none idle opens one, as urllib3 does for HTTP.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from ..errors import RiakUnavailable, ssl_error_of, tls_refusal
from ..security import Secret, make_ssl_context, redact_url
from ..transport import Node, Transport, _Attempts
from .answers import is_busy, is_stopping, refusal_of
from .connection import PbConnectFailed, PbConnection, PbConnectionLost, PbErrorAnswer

log = logging.getLogger("riaktq.riak")

T = TypeVar("T")

PB_SCHEMES = ("pb", "pbs")
DEFAULT_PB_PORT = 8087
# A failed RpbAuthReq is answered after ~5 s (a good one after ~0.3 s): wait longer than
# that, or a wrong password would look like a node that does not answer.
AUTH_TIMEOUT = 10.0


def is_pb_node(node: str) -> bool:
    """True for a ``pb://`` or ``pbs://`` node address."""
    return node.strip().lower().startswith(("pb://", "pbs://"))


def normalize_pb_node(node: str) -> str:
    """``pb://host[:port]`` or ``pbs://host[:port]`` -> with the port; ValueError otherwise."""
    node = node.strip().rstrip("/")
    shown = redact_url(node)
    try:
        parts = urlsplit(node)
        port = parts.port
    except ValueError:
        raise ValueError(f"riak node {shown!r} is not a pb(s)://host:port address") from None
    if "@" in parts.netloc:
        raise ValueError(f"riak node {shown!r}: credentials in a node URL are not used and would "
                         "be shown in logs; set username and password_file in [riak] instead")
    if parts.scheme.lower() not in PB_SCHEMES or not parts.hostname:
        raise ValueError(f"riak node {shown!r} is not a pb(s)://host:port address")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"riak node {shown!r} must not have a path")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme.lower()}://{host}:{port or DEFAULT_PB_PORT}"


class PbPool:
    """Idle connections to one node, lent to one thread at a time."""

    def __init__(self, url: str, size: int, opener: Callable[["PbPool"], PbConnection]):
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname, parts.port
        self.tls = parts.scheme == "pbs"
        self.size = size
        self._opener = opener
        self._idle: list[PbConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> PbConnection:
        """An idle connection that is still open, else a new one. An idle connection has
        nothing to read; if it has, the node closed it (restart, idle timeout): a request
        sent on it would fail, so it is dropped here, as urllib3 does for HTTP."""
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn = self._idle.pop()
            if not conn.closed_by_peer():
                return conn
            conn.close()
        return self._opener(self)

    def release(self, conn: PbConnection) -> None:
        if not conn.broken:
            with self._lock:
                if not self._closed and len(self._idle) < self.size:
                    self._idle.append(conn)
                    return
        conn.close()

    def drop_idle(self) -> None:
        """Close the idle connections: after one broke, the others likely did too (the node
        restarted), and each would otherwise cost a failed attempt."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.drop_idle()


class PbTransport(Transport):
    """Sends PB requests to any node of one cluster; safe to share between threads.

    Shares settings, node choice, skipping and backoff with the HTTP transport; only how a
    request travels differs. ``retries`` further attempts after the first, ``timeout`` bounds
    connecting and each answer.
    """

    normalize = staticmethod(normalize_pb_node)
    TLS_SCHEME = "pbs://"

    def __init__(self, nodes: list[str], *, password: Secret | None, **settings):
        self._password = password  # for RpbAuthReq (HTTP keeps only its header)
        super().__init__(nodes, password=password, **settings)

    def _make_pool(self, url: str) -> PbPool:  # type: ignore[override]
        if url.startswith("pbs://") and self.ssl_context is None:
            self.ssl_context = make_ssl_context(self.tls)
        return PbPool(url, self.pool_size, self._open)

    # -- connections --------------------------------------------------------------------

    def _open(self, pool: PbPool) -> PbConnection:
        """A new connection, with TLS and authenticated when the node is ``pbs://``.

        Raises PbConnectFailed (retried elsewhere) or a RiakRefused (final).
        """
        conn = PbConnection.open(pool.host, pool.port, self.timeout)
        try:
            if pool.tls:
                try:
                    conn.start_tls(self.ssl_context, pool.host)
                except ssl.SSLError as exc:
                    final = tls_refusal(pool.url, exc)
                    if final is not None:
                        raise final from None
                    raise PbConnectFailed("TLS handshake failed", exc) from None
                if self.username is not None:
                    # Never over plain TCP: the password would travel readable.
                    conn.authenticate(self.username, self._password.reveal(),
                                      max(AUTH_TIMEOUT, self.timeout))
        except PbErrorAnswer as exc:
            conn.close()
            raise refusal_of(pool.url, exc.text, self.username) or PbConnectFailed(
                f"connection setup refused: {exc.text}") from None
        except PbConnectionLost as exc:
            conn.close()
            raise PbConnectFailed(exc.reason) from None
        except BaseException:
            conn.close()
            raise
        return conn

    # -- the one request loop -----------------------------------------------------------

    def run(self, op: Callable[[PbConnection], T], *, node: Node | None = None) -> tuple[T, bool]:
        """Run ``op`` on a pooled connection, retrying transport failures and busy answers.

        Returns (op's result, whether an earlier attempt may already have been applied).
        RpbErrorResp answers other than busy and refusals are raised as PbErrorAnswer with
        ``maybe_applied`` set, for the caller to interpret. Raises RiakUnavailable when
        every attempt failed. With ``node`` given, only that node is tried, once.
        """
        attempts = 1 if node is not None else self.retries + 1
        state = _Attempts()
        for attempt in range(attempts):
            target = node or self._pick()
            self._pause_after_a_round(state, target, attempt)
            conn = None
            try:
                conn = target.pool.acquire()
                result = op(conn)
            except PbErrorAnswer as exc:
                final = refusal_of(target.url, exc.text, self.username)
                if final is not None:
                    self._mark_ok(target)
                    raise final from None
                if is_busy(exc.text):
                    self._busy(state, target, exc.text)
                    continue
                if is_stopping(exc.text):
                    self._failed(state, target, PbConnectFailed("stopping (riak_kv not serving)"))
                    continue
                self._mark_ok(target)
                exc.maybe_applied = state.maybe_applied
                raise
            except (PbConnectFailed, PbConnectionLost) as exc:
                self._failed(state, target, exc)
                log.debug("riak PB request on %s: %s (attempt %d/%d)", target.url,
                          state.reasons[target.url], attempt + 1, attempts)
                continue
            except OSError as exc:  # anything else the socket layer raises
                final = tls_refusal(target.url, ssl_error_of(exc)) if ssl_error_of(exc) else None
                if final is not None:
                    raise final from None
                self._failed(state, target, PbConnectionLost("connection dropped"))
                continue
            finally:
                if conn is not None:
                    target.pool.release(conn)
            self._mark_ok(target)
            return result, state.maybe_applied
        report = {}
        for n in ([node] if node is not None else self.nodes):
            report[n.url] = state.reasons.get(n.url) or n.reason or "not tried"
        raise RiakUnavailable(report)

    def _failed(self, state: _Attempts, target: Node, exc: PbConnectFailed | PbConnectionLost) -> None:
        """A failure to get any answer: the PB analogue of a dropped HTTP connection."""
        sent = isinstance(exc, PbConnectionLost)
        state.maybe_applied = state.maybe_applied or sent
        state.reasons[target.url] = exc.reason
        if sent:
            target.pool.drop_idle()
        # An idle pooled connection the node closed shows up as a drop on reuse: retry at
        # once, skip the node only if it happens again.
        if sent and exc.reason != "timed out" and target.streak == 0:
            self._mark_failed(target, exc.reason, skip=False)
            state.tried.discard(target.url)
        else:
            self._mark_failed(target, exc.reason)

    def _busy(self, state: _Attempts, target: Node, text: str) -> None:  # type: ignore[override]
        """Riak is up but could not do it now: try again, preferably elsewhere."""
        state.reasons[target.url] = f"busy ({text})"
        with self._lock:
            target.reason = state.reasons[target.url]
        state.maybe_applied = True  # a write that timed out may still land
