"""`RiakTestServer`: one node on a port, serving from a background thread."""

from __future__ import annotations

import collections
import random
import socket
import ssl
import threading
import time
from http.server import ThreadingHTTPServer

from riaktq_testing.riak_sim.faults import Handoff, _Faults, _kinds
from riaktq_testing.riak_sim.front import _Handler
from riaktq_testing.riak_sim.model import _Store
from riaktq_testing.riak_sim.security import Security


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):  # quiet on client resets
        pass

    def finish_request(self, request, client_address):
        """Over TLS: the handshake in the connection's own thread (a slow or
        failing client must not stall accept), then HTTP as usual."""
        ctx = self.riak.tls
        if ctx is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(5)
            conn = ctx.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except (OSError, ssl.SSLError):
            self.riak._count("tls_failed")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class RiakTestServer:
    """A Riak KV node (HTTP) on 127.0.0.1, serving from a background thread.

    ``types`` maps bucket type -> property overrides; by default one type,
    ``riaktq``, with allow_mult and dvv_enabled (plus the ``default`` type).
    ``backend_2i=False`` makes 2i answer as bitcask does (500
    indexes_not_supported).  ``delete_mode``: tombstone lifetime in ms, or
    "keep" / "immediate".  ``share_with``: another RiakTestServer whose data
    this one serves too (two nodes of one cluster).  ``idle_timeout``: close
    keep-alive connections idle that many seconds (as Riak's web server does).
    ``tls``: a server SSLContext (see ``server_tls_context``): the node speaks
    HTTPS.  ``security``: a ``Security`` -- Riak security enabled; a node
    without ``tls`` then answers 426 (the plain listener of a secure node).
    ``pb_port``: also serve Riak's Protocol Buffers API on that port (0 picks
    one; see ``pb_front``), over the same data, faults and security -- with
    security on, PB needs StartTls (``tls``) then an RpbAuthReq.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *,
                 types: dict[str, dict] | None = None, backend_2i: bool = True,
                 delete_mode: int | str = 3000, shuffle_unsorted: bool = True,
                 share_with: "RiakTestServer | None" = None, idle_timeout: float | None = None,
                 seed: int = 0, tls: ssl.SSLContext | None = None,
                 security: Security | None = None, pb_port: int | None = None):
        self.tls = tls
        self.security = security
        self.store = share_with.store if share_with is not None else _Store(types, delete_mode)
        self.backend_2i = backend_2i
        self.shuffle_unsorted = shuffle_unsorted
        self.idle_timeout = idle_timeout
        self.actor = self.store.new_actor()
        self.counts: collections.Counter = collections.Counter()
        self._counts_lock = threading.Lock()
        self._faults = _Faults()
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self.host = host
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pb, self._pb_wanted = None, pb_port  # the PB listener, made by _start
        self._start(port)
        self.port = self._httpd.server_address[1]
        self.node_name = f"riak@{host}:{self.port}"
        with self.store.lock:
            self.store.nodes.append(self)  # a member of the ring (cluster_stats)

    # -- lifecycle -----------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def pb_port(self) -> int | None:
        """The node's PB port, or None when it serves HTTP only."""
        return self._pb.port if self._pb is not None else None

    @property
    def pb_url(self) -> str | None:
        """``pb://host:port`` (with security on, the client must StartTls)."""
        return f"pb://{self.host}:{self.pb_port}" if self._pb is not None else None

    def _start(self, port: int) -> None:
        httpd = _HTTPServer((self.host, port), _Handler)
        httpd.riak = self
        if self._pb_wanted is not None:  # the PB port serves, and goes down, with the HTTP one
            try:
                self._start_pb()
            except OSError:
                httpd.server_close()
                raise
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"riak-test-{httpd.server_address[1]}", daemon=True)
        self._thread.start()

    def _start_pb(self) -> None:
        if self._pb is not None:
            return self._pb.listen()  # on the port it had
        from riaktq_testing.riak_sim.pb_front import PBListener  # needs protobuf
        self._pb = PBListener(self, self._pb_wanted)

    def start(self) -> "RiakTestServer":
        """Serve (again): a no-op while serving -- the constructor already
        starts -- and a restart on the same port after stop()/set_down()."""
        self.set_down(False)
        return self

    def _close_listener(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._pb is not None:
            self._pb.close()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:  # kill keep-alive connections too: a dead node answers nothing
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def is_down(self) -> bool:
        return self._httpd is None

    def set_down(self, down: bool) -> None:
        """Take the node off the network (connections refused, open ones
        closed) or bring it back on the same port."""
        with self._state_lock:
            if down and self._httpd is not None:
                self._close_listener()
            elif not down and self._httpd is None:
                self._stopping.clear()
                for _ in range(50):
                    try:
                        self._start(self.port)
                        break
                    except OSError:
                        time.sleep(0.02)
                else:
                    raise RuntimeError(f"cannot re-bind port {self.port}")

    def _down_for(self, seconds: float) -> None:
        time.sleep(0.05)  # let the control answer go out first
        self.set_down(True)
        time.sleep(seconds)
        self.set_down(False)

    def stop(self) -> None:
        """Stop serving for good (wakes up requests sleeping in slow_next)."""
        self._stopping.set()
        with self._state_lock:
            self._close_listener()
        with self.store.lock:  # gone for good: no longer a member of the ring
            if self in self.store.nodes:
                self.store.nodes.remove(self)

    def __enter__(self) -> "RiakTestServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _track(self, conn, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # -- counters ------------------------------------------------------

    def _count(self, kind: str) -> None:
        with self._counts_lock:
            self.counts[kind] += 1

    def reset_counts(self) -> None:
        with self._counts_lock:
            self.counts.clear()

    # -- fault switches ------------------------------------------------

    def fail_next(self, n: int, status: int = 503, body: bytes | str | None = None,
                  kinds=None) -> None:
        """The next n object/2i requests (of ``kinds``: get put delete index)
        answer ``status`` without doing anything."""
        if body is None:
            body = {503: "request timed out\n",
                    500: "Error:\n{error,overload}\n"}.get(status, "")
        if isinstance(body, str):
            body = body.encode()
        with self._faults.lock:
            self._faults.fail.append([n, status, body, _kinds(kinds)])

    def slow_next(self, n: int, seconds: float, *, after: bool = False, kinds=None) -> None:
        """The next n object/2i requests wait ``seconds`` before being handled
        (``after=True``: handled first, then the answer is late)."""
        with self._faults.lock:
            self._faults.slow.append([n, seconds, after, _kinds(kinds)])

    def drop_next(self, n: int, *, after: bool = False, kinds=None) -> None:
        """The next n object/2i requests get their connection closed without
        an answer (``after=True``: the request is applied first)."""
        with self._faults.lock:
            self._faults.drop.append([n, after, _kinds(kinds)])

    def sibling_storm(self, n: int) -> None:
        """The next n PUTs that carry a vclock are stored as if a concurrent
        writer got there first: they add a sibling instead of replacing."""
        with self._faults.lock:
            self._faults.storm += n

    def clear_faults(self) -> None:
        """Every fault switch of this node off, and any handoff settled."""
        self._faults.clear()
        self.settle()

    # -- a node leaving and coming back (faults.Handoff) ----------------

    def set_stopping(self, stopping: bool) -> None:
        """While True the node answers webmachine's 404 page to everything,
        as a Riak node does between `riak stop` and closing its listener."""
        self._faults.stopping = stopping

    def stop_like_riak(self, stopping_for: float = 1.0, down_for: float | None = None,
                       handoff_for: float = 0.0) -> threading.Thread:
        """`riak stop` in the background: 404 pages for ``stopping_for``
        seconds, then connections refused; with ``down_for``, back after
        that long and rejoined (``rejoin``: 2i misses what was written
        meanwhile for ``handoff_for`` seconds).  Returns the thread."""
        def run():
            went = time.time()
            self.set_stopping(True)
            if self._stopping.wait(stopping_for):
                return
            self.set_down(True)
            self.set_stopping(False)
            if down_for is None or self._stopping.wait(down_for):
                return
            self.set_down(False)
            self.rejoin(handoff_for, since=went)
        thread = threading.Thread(target=run, name=f"riak-stop-{self.port}", daemon=True)
        thread.start()
        return thread

    def rejoin(self, handoff_for: float, since: float | None = None) -> None:
        """This node is back in the ring and the cluster hands it its data
        for ``handoff_for`` seconds: 2i answers through every node leave out
        its share of the keys written since ``since`` (default: 30 s ago),
        GETs still find them, /stats shows handoffs in flight."""
        now = time.time()
        with self.store.lock:
            self.store.handoff = Handoff(self.node_name, now - 30.0 if since is None else since,
                                         now + handoff_for, len(self.store.nodes))

    def settle(self) -> None:
        """Handoff done: 2i answers are whole again."""
        with self.store.lock:
            self.store.handoff = None

    # -- inspection for tests ------------------------------------------

    def sibling_count(self, btype: str, bucket: str, key: str) -> int:
        """How many siblings (tombstones included) the key has; 0 if none."""
        with self.store.lock:
            obj = self.store.lookup(self.store.bucket(btype, bucket), key)
            return len(obj.siblings) if obj is not None else 0

    def object_count(self, btype: str, bucket: str) -> int:
        """Live (not deleted) objects in the bucket."""
        with self.store.lock:
            b = self.store.bucket(btype, bucket)
            return len(b.keys) if b is not None else 0
