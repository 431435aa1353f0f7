"""A Riak KV HTTP test server: the parts of Riak's HTTP API a task store uses.

Why: the Riak task store and its client must be tested against something that
behaves like Riak -- vector clocks, siblings, tombstones, 2i with pagination,
the exact status codes and headers -- and must be tested under failure
(503 bursts, slow answers, dropped connections, nodes going down and coming
back).  A real Riak cluster is too heavy for unit tests and cannot be made to
fail on cue; this server can.

What it models (written to Riak's riak_kv_wm_object / riak_kv_wm_index /
riak_kv_wm_props behaviour):

* bucket types (``default`` with allow_mult=false, others with allow_mult and
  dvv_enabled like ``riak admin bucket-type create`` makes them), bucket
  properties per bucket;
* objects with real causality: every sibling carries a *dot* (actor,
  counter) and the object a vector clock, as Riak's dotted version vectors
  do.  A PUT with a clock replaces exactly the siblings that clock has seen;
  a PUT without one (or with a stale one) on an allow_mult bucket adds a
  sibling; allow_mult=false buckets keep only the latest write;
* tombstones: DELETE leaves one (404 with ``X-Riak-Deleted`` and its clock)
  that is reaped after ``delete_mode`` ms and may appear as a sibling;
* GET 200 / 300 (text/plain vtag list or multipart/mixed) / 404, ``?vtag=``;
  PUT/POST with Content-Type, index header and conditional header checks,
  ``returnbody``; generated keys; quorum and timeout parameter checks;
* 2i: exact and inclusive range queries, ``$key`` and ``$bucket``,
  ``max_results`` with opaque continuations, ``return_terms``,
  ``pagination_sort``, ``term_regex``, ``stream``; unpaginated results come
  back in an arbitrary (shuffled) order, as from a real cluster's coverage
  query, so nothing can depend on an order Riak does not promise;
* key and bucket listing (counted, so tests can assert nobody lists).

Riak security (``security=Security(...)``, see ``Security``): users with
passwords and grants; over TLS (``tls=`` a server SSLContext, TLS 1.2 only as
Riak 3.2) requests need basic auth (401 otherwise) and the grant for what
they do (403), over plain HTTP they get 426; ``/``  and ``/stats`` stay open,
and malformed requests get their 400 first -- all as a real secure node
answers (transcripts 09 and 09b).

Fault switches (thread-safe, usable mid-run): ``fail_next``, ``slow_next``,
``drop_next``, ``sibling_storm``, ``set_down``, and ``security.set_password``
(a password changed or expired under a running client); ``counts`` records
every request kind and status.  Several servers can share one data store
(``RiakTestServer(share_with=other)``) to play the nodes of one cluster.

Run standalone (demos, benchmarks)::

    python tests/riak_server.py --port 8098
    python tests/riak_server.py --port 0      # prints "listening on http://127.0.0.1:PORT"
    python tests/riak_server.py --port 0 --secure /tmp/riak-tls --http-port 0
        # HTTPS with security on, users as in the 09 transcripts, CA in /tmp/riak-tls/ca.pem

Other processes can steer a standalone server through ``/__test__/...``
(see ``_Handler._control``); the client never calls those paths.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import email.utils
import hashlib
import json
import random
import re
import signal
import socket
import ssl
import string
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

__all__ = ["RiakTestServer", "Security", "server_tls_context"]

# Properties of a bucket type created with `riak admin bucket-type create`
# (Riak 2.0+) and of the `default` type, as GET .../props shows them.
_COMMON_PROPS = {
    "basic_quorum": False,
    "big_vclock": 50,
    "chash_keyfun": {"mod": "riak_core_util", "fun": "chash_std_keyfun"},
    "dw": "quorum",
    "last_write_wins": False,
    "linkfun": {"mod": "riak_kv_wm_link_walker", "fun": "mapreduce_linkfun"},
    "n_val": 3,
    "node_confirms": 0,
    "notfound_ok": True,
    "old_vclock": 86400,
    "postcommit": [],
    "pr": 0,
    "precommit": [],
    "pw": 0,
    "r": "quorum",
    "rw": "quorum",
    "small_vclock": 50,
    "sync_on_write": "backend",
    "w": "quorum",
    "write_once": False,
    "young_vclock": 20,
}
DEFAULT_TYPE_PROPS = {**_COMMON_PROPS, "allow_mult": False, "dvv_enabled": False}
NEW_TYPE_PROPS = {**_COMMON_PROPS, "allow_mult": True, "dvv_enabled": True, "active": True,
                  "claimant": "riak@127.0.0.1"}

_QUORUM_PARAMS = ("r", "w", "dw", "rw", "pr", "pw", "node_confirms")
_BOOL_PARAMS = ("basic_quorum", "notfound_ok")
_BOOL_PROPS = ("allow_mult", "last_write_wins", "dvv_enabled", "basic_quorum", "notfound_ok",
               "write_once")
_FAULT_KINDS = frozenset({"get", "put", "delete", "index"})
_B62 = string.digits + string.ascii_letters
_WM_404 = (b"<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD><BODY><H1>Not Found</H1>"
           b"The requested document was not found on this server.<P><HR>"
           b"<ADDRESS>mochiweb+webmachine web server</ADDRESS></BODY></HTML>")
_WM_401 = (b"<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>"
           b"<p><hr><address>mochiweb+webmachine web server</address></body></html>")
_HTTPS_ONLY = b"Security is enabled and Riak does not accept credentials over HTTP. Try HTTPS instead."
_CONT_MAGIC = b"\x83h\x02"  # continuations start like Erlang's term_to_binary ("g2gC...")
_VCLOCK_MAGIC = b"k\xce"


def _unique_id_62() -> str:
    """A random base-62 id like Riak's vtags and boundaries (cheap: one draw)."""
    number = random.getrandbits(128)
    out = []
    for _ in range(22):
        number, rem = divmod(number, 62)
        out.append(_B62[rem])
    return "".join(out)


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


class _Top:
    """Sorts after every string and integer: the upper bound for bisect."""

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return True

    def __le__(self, other):
        return self is other

    def __ge__(self, other):
        return True


_TOP = _Top()


class _Halt(Exception):
    """Stop handling a request and answer with this status/body."""

    def __init__(self, status: int, body: bytes | str = b"", headers=(), ctype="text/plain"):
        super().__init__(status)
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = list(headers)
        self.ctype = ctype


# --------------------------------------------------------------------------
# Vector clocks


def encode_vclock(vc: dict[str, int]) -> str:
    """Opaque, like Riak's: base64 of a compressed sorted list of entries."""
    raw = json.dumps(sorted(vc.items()), separators=(",", ":")).encode()
    return base64.b64encode(_VCLOCK_MAGIC + zlib.compress(raw)).decode()


def decode_vclock(text: str) -> dict[str, int] | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        if not raw.startswith(_VCLOCK_MAGIC):
            return None
        items = json.loads(zlib.decompress(raw[len(_VCLOCK_MAGIC):]))
        return {str(actor): int(count) for actor, count in items}
    except (ValueError, TypeError, zlib.error):
        return None


# --------------------------------------------------------------------------
# Data


class _Sib:
    __slots__ = ("value", "ctype", "charset", "encoding", "meta", "indexes", "deleted", "vtag",
                 "lastmod", "dot")

    def __init__(self, value, ctype, charset, encoding, meta, indexes, deleted, dot):
        self.value = value
        self.ctype = ctype
        self.charset = charset
        self.encoding = encoding
        self.meta = meta  # [(header name as sent, value)]
        self.indexes = indexes  # sorted unique [(field, term)]
        self.deleted = deleted
        self.vtag = _unique_id_62()
        self.lastmod = time.time()
        self.dot = dot  # (actor, counter)

    def content_type(self) -> str:
        if self.ctype is None:
            return "application/octet-stream"
        return self.ctype + (f"; charset={self.charset}" if self.charset else "")


class _Obj:
    __slots__ = ("siblings", "vclock", "entries", "deleted_at")

    def __init__(self):
        self.siblings: list[_Sib] = []
        self.vclock: dict[str, int] = {}
        self.entries: frozenset = frozenset()  # index entries now in the 2i lists
        self.deleted_at: float | None = None  # set while every sibling is a tombstone

    def snapshot(self) -> "_Obj":
        """A copy to answer from outside the store lock (siblings never change
        in place; writes replace the list and the clock)."""
        copy = _Obj()
        copy.siblings = list(self.siblings)
        copy.vclock = self.vclock
        return copy

    @property
    def is_tombstone(self) -> bool:
        return all(s.deleted for s in self.siblings)

    def etag(self) -> str:
        if len(self.siblings) == 1:
            return self.siblings[0].vtag
        digest = hashlib.md5(encode_vclock(self.vclock).encode()).digest()
        number = int.from_bytes(digest, "big")
        out = ""
        while number:
            number, rem = divmod(number, 62)
            out = _B62[rem] + out
        return out or "0"


class _Bucket:
    __slots__ = ("objects", "keys", "indexes")

    def __init__(self):
        self.objects: dict[str, _Obj] = {}
        self.keys: list[str] = []  # sorted keys of live (not tombstone) objects
        self.indexes: dict[str, list[tuple]] = {}  # field -> sorted [(term, key)]


class _Store:
    """The data of one simulated cluster; one lock guards all of it."""

    def __init__(self, types: dict[str, dict] | None, delete_mode: int | str):
        self.lock = threading.RLock()
        self.types: dict[str, dict] = {"default": dict(DEFAULT_TYPE_PROPS)}
        for name, props in (types if types is not None else {"riaktq": {}}).items():
            base = DEFAULT_TYPE_PROPS if name == "default" else NEW_TYPE_PROPS
            self.types[name] = {**base, **(props or {})}
        self.bucket_props: dict[tuple[str, str], dict] = {}
        self.buckets: dict[tuple[str, str], _Bucket] = {}
        self.delete_mode = delete_mode
        self._actors = 0

    def new_actor(self) -> str:
        with self.lock:
            self._actors += 1
            return f"vn{self._actors}"

    def props(self, btype: str, bucket: str) -> dict:
        props = {**self.types[btype], **self.bucket_props.get((btype, bucket), {})}
        props["name"] = bucket
        return props

    def bucket(self, btype: str, bucket: str, create: bool = False) -> _Bucket | None:
        b = self.buckets.get((btype, bucket))
        if b is None and create:
            b = self.buckets[(btype, bucket)] = _Bucket()
        return b

    # -- objects -------------------------------------------------------

    def lookup(self, b: _Bucket | None, key: str) -> _Obj | None:
        """The object at key, reaping its tombstone when delete_mode has passed."""
        if b is None:
            return None
        obj = b.objects.get(key)
        if obj is not None and obj.deleted_at is not None:
            mode = self.delete_mode
            if mode == "keep":
                return obj
            delay = 0.0 if mode == "immediate" else int(mode) / 1000.0
            if time.time() - obj.deleted_at >= delay:
                del b.objects[key]
                return None
        return obj

    def _reindex(self, b: _Bucket, key: str, obj: _Obj | None) -> None:
        """Bring the sorted key list and 2i lists in line with obj's siblings."""
        live = obj is not None and not obj.is_tombstone
        pos = bisect.bisect_left(b.keys, key)
        present = pos < len(b.keys) and b.keys[pos] == key
        if live and not present:
            b.keys.insert(pos, key)
        elif not live and present:
            del b.keys[pos]
        new = frozenset(e for s in obj.siblings if not s.deleted for e in s.indexes) \
            if obj is not None else frozenset()
        old = obj.entries if obj is not None else frozenset()
        for fieldname, term in old - new:
            lst = b.indexes.get(fieldname)
            if lst:
                i = bisect.bisect_left(lst, (term, key))
                if i < len(lst) and lst[i] == (term, key):
                    del lst[i]
        for fieldname, term in new - old:
            bisect.insort(b.indexes.setdefault(fieldname, []), (term, key))
        if obj is not None:
            obj.entries = new

    def write(self, btype: str, bucket: str, key: str, sib: _Sib, ctx: dict[str, int],
              actor: str, concurrent: bool = False) -> _Obj:
        """Store sib under key with causal context ctx, DVV style.

        The new sibling gets the dot (actor, n) with n above anything the
        actor has issued; siblings whose dot ctx covers are replaced, the
        others stay (allow_mult) -- unless the bucket keeps one value.
        ``concurrent`` keeps every existing sibling (a simulated race).
        """
        b = self.bucket(btype, bucket, create=True)
        obj = self.lookup(b, key)
        if obj is None:
            obj = b.objects[key] = _Obj()
        props = self.props(btype, bucket)
        counter = max(obj.vclock.get(actor, 0), ctx.get(actor, 0)) + 1
        sib.dot = (actor, counter)
        multi = bool(props.get("allow_mult")) and not props.get("last_write_wins")
        if multi:
            seen = {} if concurrent else ctx
            kept = [s for s in obj.siblings if seen.get(s.dot[0], 0) < s.dot[1]]
        else:
            kept = []
        obj.siblings = kept + [sib]
        clock = dict(obj.vclock)
        for a, c in ctx.items():
            clock[a] = max(clock.get(a, 0), c)
        clock[actor] = counter
        obj.vclock = clock
        obj.deleted_at = time.time() if obj.is_tombstone else None
        self._reindex(b, key, obj)
        if obj.deleted_at is not None and self.delete_mode == "immediate":
            del b.objects[key]
        return obj

    def wipe(self) -> None:
        with self.lock:
            self.buckets.clear()
            self.bucket_props.clear()


# --------------------------------------------------------------------------
# HTTP helpers


def _decode_segment(seg: str) -> str:
    """Decode one path segment form-style, as Riak does (``+`` is a space).

    Keys are bytes in Riak; bytes that are not UTF-8 survive as surrogates.
    """
    return unquote_to_bytes(seg.replace("+", " ")).decode("utf-8", "surrogateescape")


def _header_to_text(value: str) -> str:
    """Request header (decoded Latin-1 by http.server) -> text of its UTF-8 bytes."""
    return value.encode("latin-1", "replace").decode("utf-8", "surrogateescape")


def _text_to_header(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _parse_accept(header: str | None) -> list[tuple[str, float]]:
    ranges = []
    for order, item in enumerate((header or "*/*").split(",")):
        item = item.strip()
        if not item:
            continue
        media, *params = [p.strip() for p in item.split(";")]
        q = 1.0
        for p in params:
            name, _, val = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranges.append((media.lower(), q, order))
    ranges.sort(key=lambda r: (-r[1], r[2]))
    return [(m, q) for m, q, _ in ranges]


def _choose_media(provided: list[str], accept: str | None) -> str | None:
    """Webmachine's choice: the best-q Accept range, then the first provided
    type it matches; None means 406."""
    for media, _q in _parse_accept(accept):
        major, _, minor = media.partition("/")
        for p in provided:
            pmajor, _, pminor = p.split(";")[0].strip().lower().partition("/")
            if media == "*/*" or media == "*" or (major == pmajor and minor in ("*", pminor)):
                return p
    return None


def _parse_content_type(raw: str) -> tuple[str, str | None]:
    """Riak's reading of Content-Type: the media type, and a charset if any."""
    tokens = [t for t in re.split(r"[; ]", raw) if t]
    if not tokens:
        return "", None
    charset = None
    for tok in tokens[1:]:
        name, _, val = tok.partition("=")
        if name == "charset":
            charset = val
    return tokens[0], charset


class _Faults:
    """Fault switches of one node; every method is thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fail: list = []  # [[remaining, status, body, kinds]]
        self.slow: list = []  # [[remaining, seconds, after, kinds]]
        self.drop: list = []  # [[remaining, after, kinds]]
        self.storm = 0

    @staticmethod
    def _take(queue: list, kind: str):
        for entry in queue:
            kinds = entry[-1]
            if entry[0] > 0 and (kinds is None or kind in kinds):
                entry[0] -= 1
                if entry[0] == 0:
                    queue.remove(entry)
                return entry
        return None

    def take(self, kind: str):
        """(fail entry, slow entry, drop entry) that apply to this request."""
        with self.lock:
            return (self._take(self.fail, kind), self._take(self.slow, kind),
                    self._take(self.drop, kind))

    def take_storm(self) -> bool:
        with self.lock:
            if self.storm > 0:
                self.storm -= 1
                return True
            return False

    def clear(self) -> None:
        with self.lock:
            self.fail.clear()
            self.slow.clear()
            self.drop.clear()
            self.storm = 0


# --------------------------------------------------------------------------
# The request handler


class Security:
    """Riak security as `riak admin security` sets it up: users, passwords,
    grants.  One object is shared by the listeners of a node (HTTPS and plain
    HTTP) and by the nodes of a cluster, as Riak keeps it cluster-wide.

    Grants are (permission, scope) pairs; a scope is ``"any"``, a bucket type,
    or ``(type, bucket)``, as in ``grant riak_kv.get on riaktq to reader``.
    Every change applies to the next request (a password changed or expired
    under a running client is a fault switch).
    """

    ALL = ("riak_kv.get", "riak_kv.put", "riak_kv.delete", "riak_kv.index", "riak_kv.list_keys",
           "riak_kv.list_buckets", "riak_core.get_bucket", "riak_core.set_bucket",
           "riak_core.get_bucket_type", "riak_core.set_bucket_type")

    def __init__(self):
        self.lock = threading.Lock()
        self.passwords: dict[str, str] = {}
        self.grants: dict[str, set] = {}

    def add_user(self, name: str, password: str, grants=(), on="any") -> "Security":
        with self.lock:
            self.passwords[name] = password
            self.grants.setdefault(name, set())
        self.grant(name, grants, on)
        return self

    def set_password(self, name: str, password: str) -> None:
        with self.lock:
            if name not in self.passwords:
                raise KeyError(f"no user {name!r}")
            self.passwords[name] = password

    def grant(self, name: str, perms, on="any") -> None:
        perms = [perms] if isinstance(perms, str) else list(perms)
        with self.lock:
            self.grants.setdefault(name, set()).update((p, on) for p in perms)

    def revoke(self, name: str, perms, on="any") -> None:
        perms = [perms] if isinstance(perms, str) else list(perms)
        with self.lock:
            self.grants.setdefault(name, set()).difference_update((p, on) for p in perms)

    def authenticate(self, header: str | None) -> str | None:
        """The user a basic ``Authorization`` header proves, or None."""
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        with self.lock:
            known = self.passwords.get(user)
        return user if known is not None and known == password else None

    def allowed(self, user: str, perm: str, btype: str, bucket: str | None) -> bool:
        with self.lock:
            grants = self.grants.get(user, set())
            return any((perm, scope) in grants for scope in ("any", btype, (btype, bucket)))


def server_tls_context(certfile: str, keyfile: str | None = None,
                       client_ca: str | None = None) -> ssl.SSLContext:
    """A server context as Riak 3.2's: TLS 1.2 only.  ``client_ca``: ask for
    (and verify) a client certificate signed by that CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if client_ca:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class _Headers:
    """Request headers: case-insensitive, every line kept.

    http.server parses headers with the email package, which costs more than
    the rest of a request here; benchmarks push tens of thousands of
    requests through this server, so it parses them itself.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: list[tuple[str, str]]):
        self._items = items
        self._index: dict[str, list[str]] = {}
        for name, value in items:
            self._index.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default=None):
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, default=None):
        return list(self._index.get(name.lower(), default or []))

    def __getitem__(self, name: str):
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._index

    def keys(self):
        return [name for name, _ in self._items]

    def items(self):
        return list(self._items)


class _Handler(BaseHTTPRequestHandler):
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
        self.riak: RiakTestServer = self.server.riak
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
            self._send(halt.status, halt.body, halt.headers, halt.ctype if halt.body else None)
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
        if len(rest) == 2 and rest[0] == "keys":
            kind = {"GET": "get", "HEAD": "get", "DELETE": "delete"}.get(self.command, "put")
            return (kind, ("HEAD", "GET", "POST", "PUT", "DELETE"), self._object,
                    (btype, bucket, rest[1]))
        if rest[0] == "index" and len(rest) in (3, 4):
            return ("index", ("GET", "HEAD"), self._index, (btype, bucket, rest[1], rest[2:]))
        return None

    # -- faults --------------------------------------------------------

    def _inject_before(self, kind: str) -> bool:
        """Apply the fault switches; True when the request was answered here.

        The "after" variants let the request be applied, then hold its answer
        (``_held``) to send it late or not at all: the write happened but the
        client cannot know -- the at-least-once case.
        """
        fail, slow, drop = self.riak._faults.take(kind)
        if slow:
            if slow[2]:
                self._after = ("slow", slow[1])
            else:
                self.riak._count("slowed")
                self.riak._stopping.wait(slow[1])
        if drop:
            if drop[1]:
                self._after = ("drop", None)
            else:
                self.riak._count("dropped")
                self._drop()
                return True
        if fail:
            self._send(fail[1], fail[2])
            return True
        if self._after is not None:
            self._held = []
        return False

    def _inject_after(self):
        after, held = self._after, self._held
        self._after = self._held = None
        if after is None:
            return
        if after[0] == "drop":
            self.riak._count("dropped")
            self._drop()
            return
        self.riak._count("slowed")
        self.riak._stopping.wait(after[1])
        for status, body, headers, ctype in held or []:
            self._send(status, body, headers, ctype)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- checks shared by the KV resources -----------------------------

    def _check_authorized(self):
        """webmachine's is_authorized, as Riak's: plain HTTP to a secure node
        is 426 (credentials or not), no/wrong credentials 401."""
        security = self.riak.security
        if security is None:
            return None
        if self.riak.tls is None:
            raise _Halt(426, _HTTPS_ONLY, ctype=None)
        user = security.authenticate(self.headers.get("Authorization"))
        if user is None:
            raise _Halt(401, _WM_401, headers=[("WWW-Authenticate", 'Basic realm="Riak"')],
                        ctype="text/html")
        return user

    def _check_forbidden(self, perm: str | None = None, btype: str = "default",
                         bucket: str | None = None):
        """webmachine's is_authorized then forbidden: credentials, the
        Origin/Referer rule, then the user's grant for ``perm``."""
        user = self._check_authorized()
        if self.headers.get("Origin") == "null":
            raise _Halt(403, b"")
        referer = self.headers.get("Referer")
        if referer:
            ref = urlsplit(referer)
            host = self.headers.get("Host", "")
            here_host, _, here_port = host.partition(":")
            norm = lambda h: "localhost" if h in ("127.0.0.1", "localhost") else h  # noqa: E731
            if not ref.hostname or norm(ref.hostname) != norm(here_host) or \
                    str(ref.port or 80) != (here_port or "80"):
                raise _Halt(403, b"")
        if user is not None and perm is not None and \
                not self.riak.security.allowed(user, perm, btype, bucket):
            target = btype if bucket is None else (bucket if btype == "default" else f"{btype}/{bucket}")
            raise _Halt(403, f"Permission denied: User '{user}' does not have '{perm}' on {target}")

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
        if btype not in self.riak.store.types:
            raise _Halt(404, body if body is not None else f"Unknown bucket type: {btype}")

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

    def _ping(self):
        self._check_authorized()
        self._send(200, b"OK", ctype="text/html")

    def _stats(self):
        counts = self.riak.counts
        stats = {
            "nodename": self.riak.node_name,
            "connected_nodes": [],
            "ring_members": [self.riak.node_name],
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

    # -- objects -------------------------------------------------------

    def _object(self, btype: str, bucket: str, key: str | None):
        method = self.command
        if method in ("PUT", "POST"):
            return self._put(btype, bucket, key)
        self._check_params()
        self._check_forbidden("riak_kv.delete" if method == "DELETE" else "riak_kv.get",
                              btype, bucket)
        self._check_type(btype)
        if method == "DELETE":
            return self._delete(btype, bucket, key)
        store = self.riak.store
        with store.lock:  # answer from a snapshot: never write to a socket under the lock
            obj = store.lookup(store.bucket(btype, bucket), key)
            obj = obj.snapshot() if obj is not None else None
        if obj is None:
            raise _Halt(404, "not found\n")
        vtag = self.query.get("vtag")
        if vtag is not None:
            chosen = [s for s in obj.siblings if s.vtag == vtag]
            if not chosen:
                raise _Halt(404, "not found\n")
            return self._send_single(bucket, obj, chosen[0])
        if obj.is_tombstone:
            raise _Halt(404, "not found\n", headers=[
                ("X-Riak-Vclock", encode_vclock(obj.vclock)), ("X-Riak-Deleted", "true")])
        if len(obj.siblings) == 1:
            return self._send_single(bucket, obj, obj.siblings[0])
        self._send_siblings(bucket, obj, ["text/plain", "multipart/mixed"], status=300)

    def _sibling_headers(self, bucket: str, sib: _Sib, *, quoted_etag: bool,
                         joined_indexes: bool) -> list[tuple[str, str]]:
        link = f'</buckets/{_quote_plus(bucket)}>; rel="up"'
        headers = []
        if sib.encoding:
            headers.append(("Content-Encoding", sib.encoding))
        headers.append(("Link", link))
        headers.append(("Etag" if not quoted_etag else "ETag",
                        f'"{sib.vtag}"' if quoted_etag else sib.vtag))
        headers.append(("Last-Modified", _http_date(sib.lastmod)))
        if sib.deleted:
            headers.append(("X-Riak-Deleted", "true"))
        headers.extend(sib.meta)
        by_field: dict[str, list[str]] = {}
        for fieldname, term in sib.indexes:
            by_field.setdefault(fieldname, []).append(_text_to_header(str(term)))
        for fieldname, terms in by_field.items():
            if joined_indexes:
                headers.append(("X-Riak-Index-" + fieldname, ", ".join(terms)))
            else:
                headers.extend(("X-Riak-Index-" + fieldname, t) for t in terms)
        return headers

    def _send_single(self, bucket: str, obj: _Obj, sib: _Sib, status: int = 200):
        ctype = sib.content_type()
        if _choose_media([ctype], self.headers.get("Accept")) is None:
            raise _Halt(406, b"")
        headers = [("X-Riak-Vclock", encode_vclock(obj.vclock)), ("Vary", "Accept-Encoding")]
        headers += self._sibling_headers(bucket, sib, quoted_etag=True, joined_indexes=True)
        self._send(status, sib.value, headers, ctype=ctype)

    def _send_siblings(self, bucket: str, obj: _Obj, provided: list[str], status: int):
        choice = _choose_media(provided, self.headers.get("Accept"))
        if choice is None:
            raise _Halt(406, b"")
        headers = [("X-Riak-Vclock", encode_vclock(obj.vclock)),
                   ("Vary", "Accept, Accept-Encoding"),
                   ("ETag", f'"{obj.etag()}"'),
                   ("Last-Modified", _http_date(max(s.lastmod for s in obj.siblings)))]
        if choice == "text/plain":
            body = ("Siblings:\n" + "".join(s.vtag + "\n" for s in obj.siblings)).encode()
            return self._send(status, body, headers, ctype="text/plain")
        boundary = _unique_id_62()
        out = []
        for sib in obj.siblings:
            out.append(f"\r\n--{boundary}\r\n".encode())
            lines = [("Content-Type", sib.content_type())]
            lines += self._sibling_headers(bucket, sib, quoted_etag=False, joined_indexes=False)
            out.append("".join(f"{k}: {v}\r\n" for k, v in lines).encode("latin-1"))
            out.append(b"\r\n")
            out.append(sib.value)
        out.append(f"\r\n--{boundary}--\r\n".encode())
        self._send(status, b"".join(out), headers, ctype=f"multipart/mixed; boundary={boundary}")

    def _parse_index_headers(self) -> list[tuple[str, object]]:
        entries = set()
        errors = []
        for name in {n.lower() for n in self.headers.keys()}:
            if not name.startswith("x-riak-index-"):
                continue
            fieldname = name[len("x-riak-index-"):]
            raw = ", ".join(self.headers.get_all(name))
            for value in re.split(r",\s", raw):
                text = _header_to_text(value)
                if fieldname.endswith("_bin") and len(fieldname) > 4:
                    entries.add((fieldname, text))
                elif fieldname.endswith("_int") and len(fieldname) > 4:
                    if re.fullmatch(r"[+-]?\d+", text):
                        entries.add((fieldname, int(text)))
                    else:
                        errors.append(f"Could not parse field '{fieldname}', value '{text}'.\n")
                else:
                    errors.append(f"Unknown field type for field: '{fieldname}'.\n")
        if errors:
            raise _Halt(400, "".join(sorted(set(errors))))
        return sorted(entries)

    def _put(self, btype: str, bucket: str, key: str | None):
        raw_ctype = self.headers.get("Content-Type")
        if raw_ctype is None:
            raise _Halt(400, "Missing Content-Type request header\n")
        self._check_params()
        indexes = self._parse_index_headers()
        ctx: dict[str, int] = {}
        vclock_header = self.headers.get("X-Riak-Vclock")
        if vclock_header:
            decoded = decode_vclock(vclock_header)
            if decoded is None:
                raise _Halt(500, "Error:\n{error,{badarg,[{riak_object,decode_vclock,1}]}}\n")
            ctx = decoded
        self._check_forbidden("riak_kv.put", btype, bucket)
        media, charset = _parse_content_type(raw_ctype)
        if "/" not in media or len(media.split("/")) != 2 or not all(media.split("/")):
            raise _Halt(415, f'"{media}" is not a valid media type for the Content-type header.\n')
        self._check_type(btype)
        # Riak offers the request's own type for the answer: Accept must allow it.
        if _choose_media([media], self.headers.get("Accept")) is None:
            raise _Halt(406, b"")
        generated = key is None
        if generated:
            key = _unique_id_62()
        meta = [(k, v) for k, v in self.headers.items() if k.lower().startswith("x-riak-meta-")]
        sib = _Sib(self.body, media, charset, self.headers.get("Content-Encoding"), meta,
                   indexes, False, None)
        store = self.riak.store
        with store.lock:
            b = store.bucket(btype, bucket)
            current = store.lookup(b, key)
            exists = current is not None and not current.is_tombstone
            self._check_conditions(current if exists else None)
            concurrent = bool(ctx) and self.riak._faults.take_storm()
            obj = store.write(btype, bucket, key, sib, ctx, self.riak.actor, concurrent).snapshot()
        returnbody = self.query.get("returnbody") == "true"
        headers = []
        if generated:  # Riak does not URL-encode the Location
            prefix = f"/types/{btype}" if self.path.startswith("/types/") else ""
            headers.append(("Location", f"{prefix}/buckets/{bucket}/keys/{key}"))
        if not returnbody:
            return self._send(201 if generated else 204, b"", headers, ctype=None)
        if len(obj.siblings) == 1:
            self._send_single_with(bucket, obj, headers, 201 if generated else 200)
        else:
            self._send_siblings_returnbody(bucket, obj)

    def _send_single_with(self, bucket, obj, extra, status):
        sib = obj.siblings[0]
        headers = [("X-Riak-Vclock", encode_vclock(obj.vclock)), ("Vary", "Accept-Encoding")]
        headers += self._sibling_headers(bucket, sib, quoted_etag=True, joined_indexes=True)
        self._send(status, sib.value, headers + list(extra), ctype=sib.content_type())

    def _send_siblings_returnbody(self, bucket, obj):
        # riak_kv_wm_object:send_returnbody prefers multipart for a returnbody.
        choice = _choose_media(["multipart/mixed", "text/plain"], self.headers.get("Accept"))
        self._send_siblings(bucket, obj, [choice or "text/plain"], status=300)

    def _check_conditions(self, current: _Obj | None):
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [t.strip().strip('"') for t in inm.split(",")]
            if current is not None and ("*" in tags or current.etag() in tags):
                raise _Halt(412, b"")
        im = self.headers.get("If-Match")
        if im is not None:
            tags = [t.strip().strip('"') for t in im.split(",")]
            if current is None or not ("*" in tags or current.etag() in tags):
                raise _Halt(412, b"")
        inm_vc = self.headers.get("X-Riak-If-Not-Modified")
        if inm_vc is not None:
            if current is None or decode_vclock(inm_vc) != current.vclock:
                raise _Halt(409, b"")

    def _delete(self, btype: str, bucket: str, key: str):
        store = self.riak.store
        ctx = None
        vclock_header = self.headers.get("X-Riak-Vclock")
        if vclock_header:
            ctx = decode_vclock(vclock_header)
            if ctx is None:
                raise _Halt(500, "Error:\n{error,{badarg,[{riak_object,decode_vclock,1}]}}\n")
        with store.lock:
            current = store.lookup(store.bucket(btype, bucket), key)
            if current is None or current.is_tombstone:
                raise _Halt(404, "not found\n")
            tomb = _Sib(b"", None, None, None, [], [], True, None)
            # Without a clock Riak deletes what it has just read: every sibling.
            store.write(btype, bucket, key, tomb, ctx if ctx is not None else current.vclock,
                        self.riak.actor)
        self._send(204, ctype=None)

    # -- secondary indexes ---------------------------------------------

    def _index(self, btype: str, bucket: str, fieldname: str, args: list[str]):
        q = self.query
        fieldname = fieldname.lower()
        for name in ("return_terms", "pagination_sort"):
            if name in q and q[name].lower() not in ("true", "false"):
                raise _Halt(400, f'Invalid "{name}". "{q[name]}" is not a boolean')
        max_results = None
        if "max_results" in q:
            try:
                max_results = int(q["max_results"])
                if max_results <= 0:
                    raise ValueError
            except ValueError:
                raise _Halt(400, f'Invalid "max_results". "{q["max_results"]}" '
                                 "is not a positive integer") from None
        timeout = q.get("timeout")
        if timeout is not None and not re.fullmatch(r"\d+", timeout):
            raise _Halt(400, f'Bad timeout value "{timeout}". Must be a non-negative integer\n')
        is_int = fieldname.endswith("_int") and len(fieldname) > 4
        if fieldname not in ("$key", "$bucket") and not is_int and not (
                fieldname.endswith("_bin") and len(fieldname) > 4):
            raise _Halt(400, f"Invalid query: {{unknown_field_type,<<\"{fieldname}\">>}}\n")
        self._check_forbidden("riak_kv.index", btype, bucket)

        def term(text):
            if not is_int:
                return text
            try:
                return int(text)
            except ValueError:
                raise _Halt(400, f"Invalid query: [{{field_parsing_failed,{{<<\"{fieldname}\">>,"
                                 f"<<\"{text}\">>}}}}]\n") from None

        if fieldname == "$bucket":
            is_range, start = False, None
            end = None
        elif len(args) == 1:
            is_range, start, end = False, term(args[0]), None
        else:
            is_range, start, end = True, term(args[0]), term(args[1])
        regex = None
        if "term_regex" in q:
            if is_int:
                raise _Halt(400, "Can not use term regular expressions on integer queries")
            try:
                regex = re.compile(q["term_regex"])
            except re.error as exc:
                raise _Halt(400, f"Invalid term regular expression {q['term_regex']!r} : {exc}")
        cont = None
        if q.get("continuation"):
            cont = _decode_continuation(q["continuation"])
            if cont is None or (is_range and fieldname != "$key") != (cont[0] == "r"):
                raise _Halt(400, f"Invalid query: {{invalid_continuation,"
                                 f"<<\"{q['continuation']}\">>}}\n")
        if btype not in self.riak.store.types:
            raise _Halt(404, _WM_404, ctype="text/html")
        if _choose_media(["application/json"], self.headers.get("Accept")) is None:
            raise _Halt(406, b"")
        if not self.riak.backend_2i:
            raise _Halt(500, "Error:\n{error,{indexes_not_supported,riak_kv_bitcask_backend}}\n")
        paginated = max_results is not None or cont is not None
        sort = paginated or q.get("pagination_sort", "").lower() == "true"
        store = self.riak.store
        with store.lock:
            items = self._index_scan(store.bucket(btype, bucket), fieldname, is_range, start, end,
                                     cont, regex, max_results)
        if not sort and self.riak.shuffle_unsorted:
            self.riak._rng.shuffle(items)
        want_terms = (q.get("return_terms", "").lower() == "true" and is_range
                      and fieldname not in ("$key", "$bucket"))
        continuation = None
        if max_results is not None and len(items) == max_results and items:
            last_term, last_key = items[-1]
            continuation = _encode_continuation(
                ["r", last_term, last_key] if is_range and fieldname != "$key"
                else ["k", last_key])
        if want_terms:
            doc = {"results": [{str(t): k} for t, k in items]}
        else:
            doc = {"keys": [k for _, k in items]}
        if continuation:
            doc["continuation"] = continuation
        if q.get("stream") == "true":
            boundary = _unique_id_62()
            parts = [doc] if not continuation else [
                {k: v for k, v in doc.items() if k != "continuation"},
                {"continuation": continuation}]
            body = b"".join(f"\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
                            + json.dumps(p).encode() for p in parts)
            body += f"\r\n--{boundary}--\r\n".encode()
            return self._send(200, body, ctype=f"multipart/mixed;boundary={boundary}")
        self._send(200, json.dumps(doc).encode(), ctype="application/json")

    @staticmethod
    def _index_scan(b, fieldname, is_range, start, end, cont, regex, limit):
        """[(term, key)] matching the query, sorted, after the continuation."""
        if b is None:
            return []
        if fieldname in ("$key", "$bucket"):
            keys = b.keys
            if fieldname == "$bucket":
                lo, hi = 0, len(keys)
            elif is_range:
                lo, hi = bisect.bisect_left(keys, start), bisect.bisect_right(keys, end)
            else:
                lo, hi = bisect.bisect_left(keys, start), bisect.bisect_right(keys, start)
            if cont is not None:
                lo = max(lo, bisect.bisect_right(keys, cont[-1]))
            source = ((k, k) for k in keys[lo:hi])
        else:
            lst = b.indexes.get(fieldname, [])
            last = end if is_range else start
            lo = bisect.bisect_left(lst, (start,))
            hi = bisect.bisect_right(lst, (last, _TOP))
            if cont is not None:
                after = (cont[1], cont[2]) if cont[0] == "r" else (start, cont[1])
                try:
                    lo = max(lo, bisect.bisect_right(lst, after))
                except TypeError:  # a continuation from a query of another type
                    lo = hi
            source = iter(lst[lo:hi])
        out = []
        for item in source:
            if regex is not None and not regex.search(str(item[0])):
                continue
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out

    # -- control (for other processes; the client never calls these) ---

    def _control(self, segs):
        riak = self.riak
        q = self.query
        name = segs[0] if segs else ""
        if name == "counts" and self.command == "GET":
            return self._send(200, json.dumps(dict(riak.counts)).encode(),
                              ctype="application/json")
        if self.command != "POST":
            raise _Halt(405, b"", headers=[("Allow", "POST")])
        n = int(q.get("n", "1"))
        if name == "reset":
            riak.reset_counts()
        elif name == "wipe":
            riak.store.wipe()
        elif name == "clear_faults":
            riak._faults.clear()
        elif name == "fail":
            riak.fail_next(n, int(q.get("status", "503")))
        elif name == "slow":
            riak.slow_next(n, float(q.get("seconds", "1")), after=q.get("after") == "true")
        elif name == "drop":
            riak.drop_next(n, after=q.get("after") == "true")
        elif name == "storm":
            riak.sibling_storm(n)
        elif name == "down":
            seconds = float(q.get("seconds", "1"))
            self._send(204, ctype=None)
            self.close_connection = True
            threading.Thread(target=riak._down_for, args=(seconds,), daemon=True).start()
            return
        elif name == "2i":
            riak.backend_2i = q.get("enabled", "true") == "true"
        elif name == "password" and riak.security is not None:
            try:
                riak.security.set_password(q.get("user", ""), q.get("password", ""))
            except KeyError:
                raise _Halt(404, f"no user {q.get('user')!r}\n") from None
        elif name in ("grant", "revoke") and riak.security is not None:
            perms = [p for p in q.get("perms", "").split(",") if p]
            getattr(riak.security, name)(q.get("user", ""), perms, q.get("on", "any"))
        else:
            raise _Halt(404, _WM_404, ctype="text/html")
        self._send(204, ctype=None)


def _quote_plus(text: str) -> str:
    from urllib.parse import quote_plus
    return quote_plus(text.encode("utf-8", "surrogateescape"))


def _encode_continuation(item: list) -> str:
    return base64.b64encode(_CONT_MAGIC + json.dumps(item).encode()).decode()


def _decode_continuation(text: str):
    try:
        raw = base64.b64decode(text, validate=True)
        if not raw.startswith(_CONT_MAGIC):
            return None
        item = json.loads(raw[len(_CONT_MAGIC):])
        if isinstance(item, list) and ((item[:1] == ["r"] and len(item) == 3)
                                       or (item[:1] == ["k"] and len(item) == 2)):
            return item
    except (ValueError, TypeError):
        pass
    return None


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


# --------------------------------------------------------------------------
# The server object


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
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *,
                 types: dict[str, dict] | None = None, backend_2i: bool = True,
                 delete_mode: int | str = 3000, shuffle_unsorted: bool = True,
                 share_with: "RiakTestServer | None" = None, idle_timeout: float | None = None,
                 seed: int = 0, tls: ssl.SSLContext | None = None,
                 security: Security | None = None):
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
        self._start(port)
        self.port = self._httpd.server_address[1]
        self.node_name = f"riak@{host}:{self.port}"

    # -- lifecycle -----------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _start(self, port: int) -> None:
        httpd = _HTTPServer((self.host, port), _Handler)
        httpd.riak = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"riak-test-{httpd.server_address[1]}", daemon=True)
        self._thread.start()

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
        self._faults.clear()

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


def _kinds(kinds):
    if kinds is None:
        return None
    kinds = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = kinds - _FAULT_KINDS
    if unknown:
        raise ValueError(f"unknown request kinds {sorted(unknown)}; use {sorted(_FAULT_KINDS)}")
    return kinds


# --------------------------------------------------------------------------
# Standalone


def _parse_type(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:allow_mult=false,n_val=1`` -> (name, props)."""
    name, _, rest = spec.partition(":")
    props = {}
    for item in filter(None, rest.split(",")):
        key, _, val = item.partition("=")
        try:
            props[key] = json.loads(val)
        except ValueError:
            props[key] = val
    return name, props


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Riak KV HTTP test server (riaktq tests)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098, help="0 picks a free port")
    parser.add_argument("--type", action="append", default=[], metavar="NAME[:PROP=VAL,...]",
                        help="bucket type to create (default: riaktq with allow_mult=true)")
    parser.add_argument("--no-2i", action="store_true",
                        help="answer 2i queries as the bitcask backend does (500)")
    parser.add_argument("--delete-mode", default="3000",
                        help="tombstone lifetime in ms, or keep / immediate")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="close idle keep-alive connections after this many seconds")
    parser.add_argument("--secure", metavar="DIR",
                        help="Riak security on: HTTPS with a CA and certificate made (with "
                             "trustme) into DIR/ca.pem, basic auth, grants; users as in the 09 "
                             "transcripts unless --user is given")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD[:PERM,...]",
                        help="a user for --secure (default grants: all riaktq needs and more)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="with --secure: also the node's plain-HTTP listener (it answers 426)")
    args = parser.parse_args(argv)
    types = dict(_parse_type(s) for s in args.type) if args.type else None
    delete_mode = int(args.delete_mode) if args.delete_mode.isdigit() else args.delete_mode
    tls = security = None
    if args.secure:
        tls = _make_tls_files(args.host, args.secure)
        security = _parse_users(args.user)
    servers = []
    try:
        servers.append(RiakTestServer(args.port, args.host, types=types, backend_2i=not args.no_2i,
                                      delete_mode=delete_mode, idle_timeout=args.idle_timeout,
                                      tls=tls, security=security))
        if args.secure and args.http_port is not None:
            servers.append(RiakTestServer(args.http_port, args.host, share_with=servers[0],
                                          idle_timeout=args.idle_timeout, security=security))
    except OSError as exc:
        print(f"riak_server: cannot listen on {args.host}: {exc.strerror or exc}", file=sys.stderr)
        for server in servers:
            server.stop()
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    extra = f" (plain HTTP {servers[1].url})" if len(servers) > 1 else ""
    ca = f" CA {args.secure}/ca.pem" if args.secure else ""
    print(f"listening on {servers[0].url}{extra}{ca}", flush=True)
    while not done.wait(0.1):
        pass
    for server in servers:
        server.stop()
    return 0


TRANSCRIPT_USERS = ("riaktq:s3cret-pw", "reader:r3ad-only:riak_kv.get,riak_kv.index")


def _parse_users(specs) -> Security:
    security = Security()
    for spec in specs or TRANSCRIPT_USERS:
        name, _, rest = spec.partition(":")
        password, _, perms = rest.partition(":")
        security.add_user(name, password, perms.split(",") if perms else Security.ALL)
    return security


def _make_tls_files(host: str, directory: str) -> ssl.SSLContext:
    """A CA and a server certificate for ``host``, written to ``directory``
    (ca.pem for clients; server.pem holds the key and chain)."""
    import os

    import trustme
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(host, "localhost")
    ca.cert_pem.write_to_path(os.path.join(directory, "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(directory, "server.pem"))
    return server_tls_context(os.path.join(directory, "server.pem"))


if __name__ == "__main__":
    sys.exit(main())
