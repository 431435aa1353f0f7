"""The Protocol Buffers front: Riak's PB API (port 8087) over the node's
model, fault switches and security -- the ones its HTTP front uses.

Why a second front: riaktq's Riak client speaks PB as well as HTTP (issue
20), and every Riak test must be able to run on either transport against
the same simulated cluster.  What it answers is checked against real Riak
KV 3.2.2 PB transcripts (../shared/riak-pb-transcripts, ``replay.py``).

The wire: each message, both ways, is a frame -- 4-byte big-endian length
(code byte + payload), 1-byte message code, protobuf payload.  Payloads are
encoded and decoded with the generated messages of the client's riak.proto
(``riaktq_cli.riak.pb.riak_pb2``); the framing is ours.

One thread per connection, blocking reads: an idle connection costs no CPU
(and, as on Riak, is never closed for idling: ``idle_timeout`` is HTTP's).
A connection's state follows Riak's riak_api_pb_server: with security on,
nothing but RpbStartTls until TLS is up, nothing but RpbAuthReq until
authenticated (three failed attempts close the connection); requests that
crash Riak's connection process (see ``PBCrash``) answer one error and close.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading

from google.protobuf.message import DecodeError

from riaktq_cli.riak.pb.codes import MESSAGE_OF_CODE, MessageCode as Code
from riaktq_testing.riak_sim.faults import _FAULT_KINDS
from riaktq_testing.riak_sim.pb_index import IndexRequestsMixin
from riaktq_testing.riak_sim.pb_kv import KVRequestsMixin
from riaktq_testing.riak_sim.pb_wire import CRASH_PREFIX, PBCrash, PBError, error_frame, frame, pb

_MAX_FRAME = 64 * 1024 * 1024
_MAX_AUTH_FAILURES = 3  # riak_api_pb_server closes the connection on the third

# The codes riak_kv serves (riak_kv_app's ?SERVICES): a stopping node has
# deregistered them (prep_stop), so they are unknown codes; riak_api's ping
# and server info, and the bucket props services, still answer.
_KV_CODES = frozenset({Code.GET_CLIENT_ID_REQ, Code.GET_REQ, Code.PUT_REQ, Code.DEL_REQ,
                       Code.LIST_KEYS_REQ, Code.INDEX_REQ})

# fail_next's statuses on PB: a 503 is Riak's "busy" answer, its PB text
# `timeout` (retried elsewhere); any other status an error a client cannot
# take for busy -- the fault's body as the text, HTTP's "Error:" cut off
# (500: `{error,overload}`) -- so a write that got it may have landed.
_BUSY_TEXT = "timeout"


class PBListener:
    """A node's PB port: accepts connections, one thread each.  ``close``
    refuses new connections (the node is down); ``listen`` serves again on
    the same port."""

    def __init__(self, node, port: int):
        self.node = node
        self.port = port
        self._sock: socket.socket | None = None
        self.listen()

    def listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.node.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True,
                         name=f"riak-pb-{self.port}").start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()  # blocks; close() wakes it with an error
            except OSError:
                return
            threading.Thread(target=_PBConnection(self.node, conn).serve, daemon=True,
                             name=f"riak-pb-conn-{self.port}").start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


class _Closed(Exception):
    """The peer went away (or the node closed the connection)."""


class _PBConnection(KVRequestsMixin, IndexRequestsMixin):
    """One client connection: framing, security state, fault switches and
    dispatch to the request handlers (``KVRequestsMixin``, ``IndexRequestsMixin``)."""

    # code -> (handler name, count kind); the request's class is MESSAGE_OF_CODE's
    _ROUTES = {
        Code.PING_REQ: ("_ping", "ping"),
        Code.GET_CLIENT_ID_REQ: ("_get_client_id", "client_id"),
        Code.GET_SERVER_INFO_REQ: ("_server_info", "server_info"),
        Code.GET_REQ: ("_get", "get"),
        Code.PUT_REQ: ("_put", "put"),
        Code.DEL_REQ: ("_delete", "delete"),
        Code.LIST_KEYS_REQ: ("_list_keys", "list_keys"),
        Code.GET_BUCKET_REQ: ("_bucket_props", "props"),
        Code.INDEX_REQ: ("_index", "index"),
        Code.GET_BUCKET_TYPE_REQ: ("_type_props", "props"),
    }

    def __init__(self, node, sock: socket.socket):
        self.node = node
        self.sock = sock
        self._buf = bytearray()
        secure = node.security is not None
        self.state = "plain" if secure else "open"  # plain -> tls -> open with security
        self.user: str | None = None
        self.auth_failures = 0

    # -- the connection's life -----------------------------------------

    def serve(self) -> None:
        node = self.node
        node._track(self.sock, True)
        node._count("pb_connections")
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                code, payload = self._read_frame()
                if not self._handle(code, payload):
                    break
        except (_Closed, OSError, ssl.SSLError):
            pass
        finally:
            node._track(self.sock, False)
            try:
                self.sock.close()
            except OSError:
                pass

    def _recv_more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed()
        self._buf += chunk

    def _read_frame(self) -> tuple[int, bytes]:
        while len(self._buf) < 4:
            self._recv_more()
        (size,) = struct.unpack_from(">I", self._buf)
        if size < 1 or size > _MAX_FRAME:
            raise _Closed()
        while len(self._buf) < 4 + size:
            self._recv_more()
        code = self._buf[4]
        payload = bytes(self._buf[5:4 + size])
        del self._buf[:4 + size]
        return code, payload

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _start_tls(self) -> None:
        """RpbStartTls answered: the TLS handshake on the same socket."""
        self.node._track(self.sock, False)
        raw = self.sock
        raw.settimeout(5)
        try:
            self.sock = self.node.tls.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            self.node._count("tls_failed")  # e.g. a client that does not trust our CA
            raise _Closed() from None
        self.sock.settimeout(None)
        self.node._track(self.sock, True)

    # -- one request ---------------------------------------------------

    def _handle(self, code: int, payload: bytes) -> bool:
        """Answer one frame; False closes the connection."""
        if self.state == "plain":
            if code == Code.START_TLS and self.node.tls is not None:
                self._send(frame(Code.START_TLS))
                self._start_tls()
                self.state = "tls"
                return True
            self._send(error_frame("Security is enabled, please STARTTLS first"))
            return True
        if self.state == "tls":
            if code == Code.AUTH_REQ:
                return self._authenticate(payload)
            self._send(error_frame("Security is enabled, please authenticate first"))
            return True
        if code == Code.START_TLS:  # no security, or already authenticated: Riak's (odd) text
            self._send(error_frame("Security not enabled; STARTTLS not allowed."))
            return True
        route = self._ROUTES.get(code)
        stopping = getattr(self.node._faults, "stopping", False)  # issue 23's switch
        if route is not None and code in _KV_CODES and stopping:
            self.node._count("stopping")  # a node between `riak stop` and closing its ports
            route = None
        if route is None:
            self._send(error_frame(f"Unknown message code: {code}"))
            return True
        handler, kind = route
        self.node._count(kind)
        if kind in _FAULT_KINDS:
            return self._with_faults(kind, lambda: self._answer(code, payload, handler))
        out, keep_open = self._answer(code, payload, handler)
        self._send(out)
        return keep_open

    def _with_faults(self, kind: str, answer) -> bool:
        """The node's fault switches around one object/2i request, as the
        HTTP front applies them (``FaultsMixin``)."""
        node = self.node
        fail, slow, drop = node._faults.take(kind)
        if slow and not slow[2]:
            node._count("slowed")
            node._stopping.wait(slow[1])
        if drop and not drop[1]:
            node._count("dropped")
            return False
        if fail:
            node._count(f"status_{fail[1]}")
            body = fail[2].decode("utf-8", "replace").strip()
            text = _BUSY_TEXT if fail[1] == 503 else \
                body.removeprefix("Error:").strip() or f"Error: {fail[1]}"
            self._send(error_frame(text))
            return True
        out, keep_open = answer()
        if drop:  # applied, then the connection is lost: the write may have landed
            node._count("dropped")
            return False
        if slow and slow[2]:  # applied, then answered late
            node._count("slowed")
            node._stopping.wait(slow[1])
        self._send(out)
        return keep_open

    def _answer(self, code: int, payload: bytes, handler: str) -> tuple[bytes, bool]:
        """(frames to send, whether the connection stays open)."""
        try:
            request = None
            message = MESSAGE_OF_CODE.get(code)
            if message is not None:
                request = message()
                try:
                    request.ParseFromString(payload)  # required fields are not checked: as Riak
                except DecodeError as exc:
                    raise PBCrash("error:{gpb_error,\n    {decoding_failure,\n     {"
                                  f"{message.__name__},\n      {exc}}}}}}}:[]") from None
            return getattr(self, handler)(request), True
        except PBError as exc:
            return error_frame(exc.text), True
        except PBCrash as exc:
            return error_frame(CRASH_PREFIX + exc.text), False
        except (_Closed, OSError):
            raise
        except Exception as exc:  # a bug here: crash the connection as Riak would
            return error_frame(f"{CRASH_PREFIX}error:{{{type(exc).__name__},{exc!r}}}:[]"), False

    def _authenticate(self, payload: bytes) -> bool:
        node = self.node
        request = pb.RpbAuthReq()
        try:
            request.ParseFromString(payload)
        except DecodeError:
            self._send(error_frame(CRASH_PREFIX + "error:{gpb_error,{decoding_failure,"
                                   "{'RpbAuthReq'}}}:[]"))
            return False
        security = node.security
        user = request.user.decode("utf-8", "replace")
        if security.check_password(user, request.password.decode("utf-8", "replace")):
            node._stopping.wait(security.auth_delay)
            self.state, self.user = "open", user
            self._send(frame(Code.AUTH_RESP))
            return True
        node._count("auth_failed")
        node._stopping.wait(security.auth_failure_delay)
        self.auth_failures += 1
        self._send(error_frame("Authentication failed"))
        return self.auth_failures < _MAX_AUTH_FAILURES

    def _wait_for_hangup(self) -> None:
        """A request Riak never answers: read and drop whatever comes until
        the client gives up on the connection."""
        while True:
            self._buf.clear()
            self._recv_more()
