"""The HTTP front: request parsing, answering, routing, and the plain
resources (root, ping, stats, listing, props). Objects, 2i, security,
faults and control come in as mixins, one module each."""

from __future__ import annotations

import json
import re
import socket
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

from riaktq_testing.riak_sim.control import ControlMixin
from riaktq_testing.riak_sim.faults import FaultsMixin, _FAULT_KINDS, cluster_stats
from riaktq_testing.riak_sim.index import IndexMixin
from riaktq_testing.riak_sim.objects import ObjectsMixin
from riaktq_testing.riak_sim.security import SecurityMixin
from riaktq_testing.riak_sim.wire import (
    _BOOL_PARAMS, _BOOL_PROPS, _LINK_WALK, _QUORUM_PARAMS, _WM_404, _Halt, _Headers,
    _choose_media, _decode_segment, webmachine_error_body)


class _Handler(FaultsMixin, SecurityMixin, ObjectsMixin, IndexMixin, ControlMixin, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MochiWeb/3.0.0 WebMachine/1.11.1 (riaktq test server)"
    sys_version = ""
    _KNOWN = ("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "OPTIONS")
    _after = None  # an "after" fault waiting for the answer (see _inject_before)
    _held = None  # answers held back by such a fault
    _control_request = False  # /__test__/...: not counted

    # Every method goes through _dispatch, so unknown methods get webmachine's
    # answers (501 unknown, 405 known but not allowed) rather than http.server's.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def setup(self):
        super().setup()
        self.riak = self.server.riak  # the RiakTestServer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.riak.idle_timeout:
            self.connection.settimeout(self.riak.idle_timeout)
        self.riak._track(self.connection, True)
        self.riak._count("connections")

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.riak._track(self.connection, False)

    def log_message(self, format, *args):  # quiet: tests and benchmarks
        pass

    def parse_request(self):
        """Request line and headers, as http.server does, minus the email
        parser (see _Headers).  HTTP/1.0 and 1.1 only."""
        self.command = None
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        items = []
        while True:
            line = self.rfile.readline(65537)
            if len(line) > 65536 or len(items) > 200:
                self.send_error(431, "Request header fields too large")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and items:  # obsolete folding
                name, value = items[-1]
                items[-1] = (name, value + " " + text.strip())
                continue
            name, sep, value = text.partition(":")
            if not sep:
                self.send_error(400, "Bad header line")
                return False
            items.append((name.strip(), value.strip()))
        self.headers = _Headers(items)
        connection = (self.headers.get("Connection") or "").lower()
        http10 = self.request_version == "HTTP/1.0"
        self.close_connection = connection == "close" or (http10 and connection != "keep-alive")
        if (self.headers.get("Expect") or "").lower() == "100-continue":
            if not self.handle_expect_100():
                return False
        return True

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, BrokenPipeError, socket.timeout, OSError):
            self.close_connection = True

    # -- answering -----------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers=(), ctype: str | None = "text/plain"):
        if self._held is not None:  # an "after" fault holds the answer back
            self._held.append((status, body, list(headers), ctype))
            return
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # Headers and body in one write: two small writes meet Nagle and
        # delayed ACKs and cost ~40 ms per request.
        self._headers_buffer.append(b"\r\n")
        if body and self.command != "HEAD":
            self._headers_buffer.append(body)
        if not self._control_request:  # counted before the client can see the answer
            self.riak._count(f"status_{status}")
        self.flush_headers()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-request (killed, say): Riak's web
            # server fails such a request; it never stores a truncated value.
            raise ValueError("request body shorter than its Content-Length")
        return body

    # -- routing -------------------------------------------------------

    def _dispatch(self):
        self._after = self._held = None
        raw_path, _, raw_query = self.path.partition("?")
        self.query = dict(parse_qsl(raw_query, keep_blank_values=True))
        try:
            self.body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        segs = [_decode_segment(s) for s in raw_path.split("/")[1:]]
        if segs and segs[-1] == "" and len(segs) > 1:
            segs = segs[:-1]
        try:
            self._control_request = segs[:1] == ["__test__"]
            if self._control_request:
                return self._control(segs[1:])
            if self.riak._faults.stopping:  # riak_kv's routes are gone: webmachine's page
                self.riak._count("stopping")
                raise _Halt(404, _WM_404, ctype="text/html")
            route = self._route(segs)
            if route is None:
                raise _Halt(404, _WM_404, ctype="text/html")
            kind, allowed, handler, args = route
            if self.command not in self._KNOWN:
                raise _Halt(501, b"")
            if self.command not in allowed:
                raise _Halt(405, b"", headers=[("Allow", ", ".join(allowed))])
            self.riak._count(kind)
            if kind in _FAULT_KINDS and self._inject_before(kind):
                return
            handler(*args)
            self._inject_after()
        except _Halt as halt:
            body, ctype = halt.body, halt.ctype if halt.body else None
            if not body and halt.status >= 400:  # webmachine renders an error page
                body, ctype = webmachine_error_body(halt.status), "text/html"
            self._send(halt.status, body, halt.headers, ctype)
            self._inject_after()
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # a bug in this server: answer as Riak would
            body = f"Error:\n{{error,{{{type(exc).__name__},{exc!r}}}}}\n".encode()
            try:
                self._send(500, body)
            except OSError:
                self.close_connection = True

    def _route(self, segs):
        """(count kind, allowed methods, handler, args) or None for 404."""
        if segs in ([""], []):
            return ("root", ("GET", "HEAD"), self._root, ())
        if segs == ["ping"]:
            return ("ping", ("GET", "HEAD"), self._ping, ())
        if segs == ["stats"]:
            return ("stats", ("GET", "HEAD"), self._stats, ())
        btype = "default"
        if segs[:1] == ["types"] and len(segs) >= 2:
            btype, segs = segs[1], segs[2:]
            if segs == ["props"]:
                return ("props", ("GET", "HEAD", "PUT"), self._type_props, (btype,))
        if segs == ["buckets"]:
            return ("list_buckets", ("GET", "HEAD"), self._list_buckets, (btype,))
        if len(segs) < 3 or segs[0] != "buckets":
            return None
        bucket, rest = segs[1], segs[2:]
        if rest == ["props"]:
            return ("props", ("GET", "HEAD", "PUT", "DELETE"), self._bucket_props, (btype, bucket))
        if rest == ["keys"]:
            kind = "put" if self.command == "POST" else "list_keys"
            return (kind, ("GET", "HEAD", "POST"), self._keys, (btype, bucket))
        if len(rest) > 2 and rest[0] == "keys" and self.command in ("GET", "HEAD"):
            return ("get", ("GET", "HEAD"), self._link_walk, ())
        if len(rest) == 2 and rest[0] == "keys":
            kind = {"GET": "get", "HEAD": "get", "DELETE": "delete"}.get(self.command, "put")
            return (kind, ("HEAD", "GET", "POST", "PUT", "DELETE"), self._object,
                    (btype, bucket, rest[1]))
        if rest[0] == "index" and len(rest) in (3, 4):
            return ("index", ("GET", "HEAD"), self._index, (btype, bucket, rest[1], rest[2:]))
        return None


    def _check_params(self):
        for name in _QUORUM_PARAMS:
            val = self.query.get(name)
            if val is None or val in ("default", "one", "quorum", "all"):
                continue
            if not re.fullmatch(r"-?\d+", val):
                raise _Halt(400, f"{name} query parameter must be an integer or one of the "
                                 f"following words: 'one', 'quorum' or 'all'\n")
        for name in _BOOL_PARAMS:
            val = self.query.get(name)
            if val is not None and val.lower() not in ("true", "false", "default"):
                raise _Halt(400, f"{name} query parameter must be true or false\n")
        val = self.query.get("timeout")
        if val is not None and not re.fullmatch(r"-?\d+", val):
            raise _Halt(400, f'Bad timeout value "{val}"\n')

    def _check_type(self, btype: str, body: bytes | None = None):
        """404 for an unknown bucket type: the KV resources say so in text,
        the props resources with webmachine's page (`body` _WM_404)."""
        if btype not in self.riak.store.types:
            if body is not None:
                raise _Halt(404, body, ctype="text/html")
            raise _Halt(404, f"Unknown bucket type: {btype}")

    def _check_n_val(self, btype: str, bucket: str, names):
        """The FSMs' check of quorum values against the bucket's n_val: 400
        with riak_kv_wm_object's message when one asks for more replicas."""
        n_val = self.riak.store.props(btype, bucket)["n_val"]
        for name in names:
            val = self.query.get(name)
            if val is not None and val.lstrip("-").isdigit() and int(val) > n_val:
                raise _Halt(400, "Specified w/dw/pw/node_confirms values invalid for bucket "
                                 f"n value of {n_val}\n")

    # -- plain resources -----------------------------------------------

    def _root(self):
        accept = self.headers.get("Accept")
        if _choose_media(["text/html", "application/json"], accept) == "application/json":
            links = {"riak_kv_wm_buckets": "/buckets", "riak_kv_wm_index": "/buckets",
                     "riak_kv_wm_keylist": "/buckets", "riak_kv_wm_object": "/buckets",
                     "riak_kv_wm_ping": "/ping", "riak_kv_wm_props": "/buckets",
                     "riak_kv_wm_stats": "/stats"}
            self._send(200, json.dumps(links).encode(), ctype="application/json")
        else:
            items = "".join(f'<li><a href="{p}">{p}</a></li>'
                            for p in ("/buckets", "/ping", "/stats"))
            self._send(200, f"<html><body><ul>{items}</ul></body></html>".encode(),
                       ctype="text/html")

    def _link_walk(self):
        """An unencoded `/` in a key: Riak routes it to the link walker."""
        raise _Halt(400, _LINK_WALK)

    def _ping(self):
        self._check_authorized()
        self._send(200, b"OK", ctype="text/html")

    def _stats(self):
        counts = self.riak.counts
        stats = {
            "nodename": self.riak.node_name,
            **cluster_stats(self.riak),  # ring members, connected nodes, handoffs
            "storage_backend": ("riak_kv_leveled_backend" if self.riak.backend_2i
                                else "riak_kv_bitcask_backend"),
            "riak_kv_version": "riak_kv-3.2.0-test",
            "node_gets": counts["get"], "node_puts": counts["put"],
            "vnode_index_reads": counts["index"],
            # Totals under real Riak's names (riak_kv_stat), which only grow
            # there; here /__test__/reset clears them, so read them as deltas.
            # A DELETE is a tombstone PUT followed by a reaping GET on a real
            # node (riak_kv_delete), so it counts as one of each.
            "node_gets_total": counts["get"] + counts["delete"],
            "node_puts_total": counts["put"] + counts["delete"],
            "index_fsm_create": counts["index"],
            "list_fsm_create": counts["list_keys"] + counts["list_buckets"],
        }
        ctype = _choose_media(["application/json", "text/plain"], self.headers.get("Accept"))
        if ctype is None:
            raise _Halt(406, b"")
        self._send(200, json.dumps(stats).encode(), ctype=ctype)

    def _list_buckets(self, btype: str):
        self._check_forbidden("riak_kv.list_buckets", btype)
        if self.query.get("buckets") not in ("true", "stream"):
            raise _Halt(400, "Invalid buckets parameter: use buckets=true or buckets=stream\n")
        self._check_type(btype)
        store = self.riak.store
        with store.lock:
            names = sorted(b for (t, b), bk in store.buckets.items() if t == btype and bk.keys)
        self._send(200, json.dumps({"buckets": names}).encode(), ctype="application/json")

    def _keys(self, btype: str, bucket: str):
        if self.command == "POST":
            return self._object(btype, bucket, None)
        self._check_forbidden("riak_kv.list_keys", btype, bucket)
        if self.query.get("keys") not in ("true", "stream"):
            raise _Halt(400, "Invalid keys parameter: use keys=true or keys=stream\n")
        self._check_type(btype)
        store = self.riak.store
        with store.lock:
            b = store.bucket(btype, bucket)
            keys = []
            if b is not None:
                for key in list(b.objects):
                    if store.lookup(b, key) is not None:  # reaps due tombstones
                        keys.append(key)
        if self.query["keys"] == "stream":
            body = json.dumps({"keys": keys}).encode() + b'{"keys":[]}'
        else:
            body = json.dumps({"keys": keys}).encode()
        self._send(200, body, ctype="application/json")

    # -- properties ----------------------------------------------------

    def _parse_props_body(self) -> dict:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _Halt(415, b"")
        try:
            doc = json.loads(self.body)
            props = doc["props"]
            if not isinstance(props, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise _Halt(400, 'Invalid bucket properties: expected {"props":{...}}\n') from None
        errors = []
        for name, val in props.items():
            if name in _BOOL_PROPS and not isinstance(val, bool):
                errors.append(f"{name}: not a boolean")
            elif name == "n_val" and not (isinstance(val, int) and not isinstance(val, bool)
                                          and val > 0):
                errors.append("n_val: must be a positive integer")
            elif name in _QUORUM_PARAMS and not (
                    (isinstance(val, int) and not isinstance(val, bool) and val >= 0)
                    or val in ("one", "quorum", "all", "default")):
                errors.append(f"{name}: not a quorum value")
        if errors:
            raise _Halt(400, "Invalid bucket properties: " + "; ".join(errors) + "\n")
        return props

    def _type_props(self, btype: str):
        self._check_forbidden("riak_core.set_bucket_type" if self.command == "PUT"
                              else "riak_core.get_bucket_type", btype)
        store = self.riak.store
        self._check_type(btype, _WM_404)
        if self.command == "PUT":
            props = self._parse_props_body()
            if btype == "default":
                raise _Halt(405, b"", headers=[("Allow", "GET, HEAD")])
            with store.lock:
                store.types[btype].update({k: v for k, v in props.items() if k != "name"})
            return self._send(204, ctype=None)
        with store.lock:
            props = {**store.types[btype], "name": btype}
        self._send_json({"props": props})

    def _bucket_props(self, btype: str, bucket: str):
        self._check_forbidden("riak_core.get_bucket" if self.command in ("GET", "HEAD")
                              else "riak_core.set_bucket", btype, bucket)
        store = self.riak.store
        self._check_type(btype, _WM_404)
        if self.command == "PUT":
            props = self._parse_props_body()
            with store.lock:
                store.bucket_props.setdefault((btype, bucket), {}).update(
                    {k: v for k, v in props.items() if k != "name"})
            return self._send(204, ctype=None)
        if self.command == "DELETE":
            with store.lock:
                store.bucket_props.pop((btype, bucket), None)
            return self._send(204, ctype=None)
        with store.lock:
            props = store.props(btype, bucket)
        self._send_json({"props": props})

    def _send_json(self, doc):
        if _choose_media(["application/json"], self.headers.get("Accept")) is None:
            raise _Halt(406, b"")
        self._send(200, json.dumps(doc).encode(), ctype="application/json")
