"""One connection to a Riak node's Protocol Buffers port: frames, StartTls, authentication.

Why PB at all: with Riak security on, HTTPS re-checks the password on every request (~0.3 s
each on a real node); a PB connection authenticates once, after StartTls, and then serves
requests at full speed. On a plain node PB is also 1.2-1.9 times faster than HTTP.

The wire: every message, both ways, is ``length (4 bytes, big-endian) | code (1 byte) |
payload``, where the length counts the code byte and the payload (protobuf, from riak_pb2).
A connection serves one request at a time; the pool (transport.py) hands each to one thread.

Failures come out as two kinds:

* ``PbConnectFailed`` -- the request never left (refused, unreachable, timed out connecting,
  the TLS handshake lost): safe to try elsewhere, nothing can have landed.
* ``PbConnectionLost`` -- the connection broke or timed out after the request was sent: the
  node may have applied it ("may have landed").

An RpbErrorResp is not a failure of the connection: it comes back as ``PbErrorAnswer`` with
Riak's text, and transport.py decides what it means.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from .codes import MESSAGE_OF_CODE, MessageCode
from . import riak_pb2

_HEADER = struct.Struct(">IB")
_MAX_FRAME = 512 * 1024 * 1024  # Riak's own limit is lower; a larger length means garbage
_READ_CHUNK = 256 * 1024

#: Riak's first words when a request crashed the connection's process; the socket closes next.
CRASH_PREFIX = "Error processing incoming message"


class PbConnectFailed(OSError):
    """No connection (or no TLS on it): the request was not sent. ``reason`` is short."""

    def __init__(self, reason: str, cause: BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class PbConnectionLost(OSError):
    """The connection broke, or no answer came in time, after the request was sent."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class PbErrorAnswer(Exception):
    """Riak answered with RpbErrorResp; ``text`` is its errmsg as text."""

    text: str

    def __str__(self) -> str:
        return self.text


def _connect_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "cannot resolve host"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    text = str(exc).lower()
    if "no route" in text or "unreachable" in text:
        return "host unreachable"
    return "cannot connect"


class PbConnection:
    """One socket to one node; not thread-safe (the pool lends it to one thread at a time)."""

    def __init__(self, sock: socket.socket, timeout: float | None):
        self.sock: socket.socket | ssl.SSLSocket = sock
        self.timeout = timeout
        self._buf = bytearray()
        self.broken = False

    @classmethod
    def open(cls, host: str, port: int, timeout: float) -> "PbConnection":
        """Connect; PbConnectFailed with a short reason when that fails."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise PbConnectFailed(_connect_reason(exc), exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, timeout)

    # -- frames -------------------------------------------------------------------------

    def send(self, code: MessageCode, message: Message | None = None) -> None:
        payload = message.SerializeToString() if message is not None else b""
        try:
            self.sock.sendall(_HEADER.pack(len(payload) + 1, code) + payload)
        except OSError as exc:
            self.broken = True
            # Part of the frame may have left: Riak may have read and applied it.
            raise PbConnectionLost(_lost_reason(exc)) from None

    def receive(self, timeout: float | None = None) -> tuple[int, Message | None]:
        """The next frame: (code, decoded message or None for a bare code).

        RpbErrorResp is raised as PbErrorAnswer; a crash answer also marks the connection
        broken, because Riak closes it right after.
        """
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            header = self._read(_HEADER.size)
            length, code = _HEADER.unpack(header)
            if length < 1 or length > _MAX_FRAME:
                self.broken = True
                raise PbConnectionLost(f"bad frame length {length}")
            payload = self._read(length - 1)
        except OSError as exc:
            self.broken = True
            if isinstance(exc, PbConnectionLost):
                raise
            raise PbConnectionLost(_lost_reason(exc)) from None
        finally:
            if timeout is not None and not self.broken:
                self.sock.settimeout(self.timeout)
        cls = MESSAGE_OF_CODE.get(code)
        message = None
        if cls is not None:
            try:
                message = cls.FromString(payload)
            except DecodeError:
                self.broken = True
                raise PbConnectionLost(f"undecodable {cls.__name__} from the node") from None
        if code == MessageCode.ERROR_RESP:
            text = message.errmsg.decode("utf-8", "replace")
            if text.startswith(CRASH_PREFIX):
                self.broken = True
            raise PbErrorAnswer(text)
        return code, message

    def request(self, code: MessageCode, message: Message | None, expect: MessageCode,
                timeout: float | None = None) -> Message | None:
        """Send one request and read its one answer, which must carry code ``expect``."""
        self.send(code, message)
        got, answer = self.receive(timeout)
        if got != expect:
            self.broken = True
            raise PbConnectionLost(f"answer code {got} to request code {int(code)} "
                                   f"(expected {int(expect)})")
        return answer

    def _read(self, size: int) -> bytes:
        buf = self._buf
        while len(buf) < size:
            chunk = self.sock.recv(max(_READ_CHUNK, size - len(buf)))
            if not chunk:
                raise PbConnectionLost("connection closed by the node")
            buf += chunk
        data = bytes(buf[:size])
        del buf[:size]
        return data

    # -- security ---------------------------------------------------------------------

    def start_tls(self, ctx: ssl.SSLContext, server_hostname: str) -> None:
        """RpbStartTls, then the TLS handshake on the same socket.

        Errors: PbErrorAnswer (the node refused: security off, or already authenticated),
        ssl.SSLError (the handshake failed: certificate, protocol), PbConnectFailed (lost).
        """
        self.request(MessageCode.START_TLS, None, MessageCode.START_TLS)
        if self._buf:
            raise PbConnectionLost("data after the StartTls go-ahead")
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        except ssl.SSLError:
            self.broken = True
            raise
        except OSError as exc:
            self.broken = True
            raise PbConnectFailed(_lost_reason(exc), exc) from None

    def authenticate(self, user: str, password: str, timeout: float) -> None:
        """RpbAuthReq; PbErrorAnswer("Authentication failed") on wrong credentials.

        Riak answers a failed login after about 5 s (a good one in ~0.3 s), so ``timeout``
        must be longer than that or a wrong password would look like a dead node.
        """
        req = riak_pb2.RpbAuthReq(user=user.encode("utf-8"), password=password.encode("utf-8"))
        self.request(MessageCode.AUTH_REQ, req, MessageCode.AUTH_RESP, timeout=timeout)

    def closed_by_peer(self) -> bool:
        """True when an idle connection can be read from: the node closed it (or sent
        something unasked, which makes it unusable too)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable) or bool(self._buf)

    def close(self) -> None:
        self.broken = True
        try:
            self.sock.close()
        except OSError:
            pass


def _lost_reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, PbConnectionLost):
        return exc.reason
    return "connection dropped"

