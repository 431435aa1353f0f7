"""A scripted Riak PB endpoint for the PB client's unit tests: failures on cue.

The Riak test server (riaktq_testing.riak_sim) is the model; this fake only answers what a test
scripts, so a test can make a node drop a connection after reading a request, answer `timeout`,
or refuse with Riak's security texts, and count what reached it (StartTls, AuthReq, requests).
"""

import socket
import ssl
import struct
import threading

from riaktq_cli.riak.pb import riak_pb2
from riaktq_cli.riak.pb.codes import MESSAGE_OF_CODE, MessageCode

CLOSE = object()  # a handler's answer: close the connection without answering


def error(text):
    return MessageCode.ERROR_RESP, riak_pb2.RpbErrorResp(errmsg=text.encode(), errcode=0)


class FakePbNode:
    """Serves on 127.0.0.1; ``handlers[code](request, state)`` -> (code, message) or CLOSE.

    ``tls``: a server SSLContext: the node then demands StartTls and, with ``users``, auth.
    """

    def __init__(self, handlers=None, tls=None, users=None):
        self.handlers = dict(handlers or {})
        self.tls, self.users = tls, users
        self.seen = []             # codes of every request received, in order
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"{'pbs' if tls else 'pb'}://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.sock.close()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        state = {"tls": False, "user": None}
        try:
            while True:
                head = _read(conn, 5)
                length, code = struct.unpack(">IB", head)
                payload = _read(conn, length - 1)
                self.seen.append(code)
                cls = MESSAGE_OF_CODE.get(code)
                request = cls.FromString(payload) if cls else None
                answer = self._answer(code, request, state)
                if answer is CLOSE:
                    return
                out_code, message = answer
                body = message.SerializeToString() if message is not None else b""
                conn.sendall(struct.pack(">IB", len(body) + 1, out_code) + body)
                if code == MessageCode.START_TLS and out_code == MessageCode.START_TLS:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    state["tls"] = True
        except (OSError, ValueError, struct.error):
            pass
        finally:
            conn.close()

    def _answer(self, code, request, state):
        if self.tls is not None:
            if code == MessageCode.START_TLS and not state["tls"]:
                return MessageCode.START_TLS, None
            if not state["tls"]:
                return error("Security is enabled, please STARTTLS first")
            if code == MessageCode.AUTH_REQ and state["user"] is None:
                user, password = request.user.decode(), request.password.decode()
                if (self.users or {}).get(user) != password:
                    return error("Authentication failed")
                state["user"] = user
                return MessageCode.AUTH_RESP, None
            if self.users and state["user"] is None:
                return error("Security is enabled, please authenticate first")
        handler = self.handlers.get(code)
        if handler is None:
            if code == MessageCode.PING_REQ:
                return MessageCode.PING_RESP, None
            return error(f"Unknown message code: {code}")
        return handler(request, state)


def _read(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ValueError("closed")
        data += chunk
    return data


def server_context(server_pem):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server_pem)
    return ctx
