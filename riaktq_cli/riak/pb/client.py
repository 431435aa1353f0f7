"""PbClient: RiakClient's calls over Riak's Protocol Buffers API.

``RiakClient(["pb://host:8087"])`` gives one of these (see RiakClient.__new__), so the store
never knows which API it talks to: the same calls, the same RiakObject / Sibling / IndexPage
records, the same one-line errors.

What keeps the two APIs interchangeable:

* Vector clocks travel as text, base64 of Riak's binary clock -- exactly what HTTP's
  ``X-Riak-Vclock`` carries -- so a clock read through one API may be sent through the other.
* 2i continuations likewise (Riak's PB continuation is that same text).
* Index names and terms go through the same checks (objects.index_terms,
  queries.check_index_query); keys, buckets and terms are UTF-8.
* Every fetch asks for ``deletedvclock``: a tombstone then comes back with its clock, like
  HTTP's 404 with ``X-Riak-Deleted``.
* Every 2i query is streamed and carries a timeout: Riak never answers a non-streamed query
  on an unknown bucket type (see the PB transcripts, 07-errors).
"""

from __future__ import annotations

import base64
import binascii
import socket
from typing import Any

from ..client import RiakClient
from ..errors import RiakConflict, RiakError
from ..objects import RiakObject, Sibling, index_terms
from ..queries import IndexPage, check_index_query
from ..security import TlsReport, make_ssl_context, tls_probe
from . import riak_pb2
from .answers import request_error
from .codes import QUORUM_ALL, QUORUM_DEFAULT, QUORUM_ONE, QUORUM_QUORUM, MessageCode
from .connection import PbConnection, PbConnectionLost, PbErrorAnswer
from .transport import PbTransport, normalize_pb_node

OCTET_STREAM = "application/octet-stream"
_QUORUM_NAMES = {QUORUM_ONE: "one", QUORUM_QUORUM: "quorum", QUORUM_ALL: "all",
                 QUORUM_DEFAULT: "default"}
_QUORUM_PROPS = ("r", "w", "pr", "pw", "dw", "rw")


def _bytes(text: Any, what: str) -> bytes:
    """A name as Riak gets it; empty names are refused here, as on HTTP."""
    value = str(text)
    if not value:
        raise ValueError("riak: bucket types, buckets, keys and 2i terms must not be empty")
    return value.encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    """Bytes from Riak as text; bytes that are not UTF-8 survive a round trip."""
    return raw.decode("utf-8", "surrogateescape")


def _vclock_text(raw: bytes) -> str | None:
    return base64.b64encode(raw).decode("ascii") if raw else None


def _vclock_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("riak: a vclock must be the base64 text Riak gave") from None


def _sibling(content: riak_pb2.RpbContent) -> Sibling:
    indexes: dict[str, list[str]] = {}
    for pair in content.indexes:
        terms = indexes.setdefault(_text(pair.key), [])
        term = _text(pair.value)
        if term not in terms:
            terms.append(term)
    content_type = content.content_type.decode("latin-1") if content.content_type else OCTET_STREAM
    return Sibling(value=content.value, content_type=content_type, indexes=indexes,
                   deleted=content.deleted)


def _props_dict(props: riak_pb2.RpbBucketProps) -> dict:
    """Bucket properties as HTTP's JSON gives them (quorums by name, texts as text)."""
    out: dict[str, Any] = {}
    for field, value in props.ListFields():
        name = field.name
        if field.message_type is not None:
            def modfun(m):
                return {"mod": _text(m.module), "fun": _text(m.function)}
            if name in ("precommit", "postcommit"):
                out[name] = [modfun(h.modfun) if h.HasField("modfun") else {"name": _text(h.name)}
                             for h in value]
            else:
                out[name] = modfun(value)
        elif name in _QUORUM_PROPS:
            out[name] = _QUORUM_NAMES.get(value, value)
        elif name == "repl":
            out[name] = riak_pb2.RpbBucketProps.RpbReplMode.Name(value).lower()
        elif isinstance(value, bytes):
            out[name] = _text(value)
        else:
            out[name] = value
    return out


class PbClient(RiakClient):
    """Talks to one Riak KV cluster over Protocol Buffers, through any of its nodes.

    The same calls and results as the HTTP RiakClient (which it replaces when the nodes are
    ``pb://`` or ``pbs://``). Safe to share between threads.
    """

    api = "pb"
    transport_class = PbTransport

    def tls_report(self, node: str) -> TlsReport | None:
        """A TlsReport of one StartTls handshake with ``node`` (None for pb://)."""
        url = normalize_pb_node(node)
        if not url.startswith("pbs://"):
            return None
        ctx = self.transport.ssl_context or make_ssl_context(self.tls)

        def start_tls(raw: socket.socket) -> None:
            try:
                PbConnection(raw, None).request(MessageCode.START_TLS, None, MessageCode.START_TLS)
            except PbErrorAnswer as exc:
                raise ConnectionError(f"StartTls refused: {exc.text}") from None
        return tls_probe(url, ctx, self.transport.timeout, before_tls=start_tls)

    # -- the calls ----------------------------------------------------------------------

    def _call(self, code: MessageCode, message, expect: MessageCode, what: str,
              btype: str | None = None):
        """One request/answer; (answer, maybe_applied). Riak's refusals are raised by the
        transport; other error answers become one-line RiakErrors here."""
        try:
            return self.transport.run(lambda conn: conn.request(code, message, expect))
        except PbErrorAnswer as exc:
            raise request_error(what, exc.text, btype) from None

    def ping(self) -> None:
        """Succeed if any node answers RpbPingReq; else RiakUnavailable."""
        self._call(MessageCode.PING_REQ, None, MessageCode.PING_RESP, "ping")

    def bucket_props(self, btype: str, bucket: str) -> dict:
        req = riak_pb2.RpbGetBucketReq(bucket=_bytes(bucket, "bucket"), type=_bytes(btype, "type"))
        answer, _ = self._call(MessageCode.GET_BUCKET_REQ, req, MessageCode.GET_BUCKET_RESP,
                               f"properties of {btype}/{bucket}", btype)
        return _props_dict(answer.props)

    def type_props(self, btype: str) -> dict:
        req = riak_pb2.RpbGetBucketTypeReq(type=_bytes(btype, "type"))
        answer, _ = self._call(MessageCode.GET_BUCKET_TYPE_REQ, req, MessageCode.GET_BUCKET_RESP,
                               f"properties of bucket type {btype}", btype)
        return _props_dict(answer.props)

    def fetch(self, btype: str, bucket: str, key: str, *,
              include_tombstone: bool = False) -> RiakObject | None:
        """The object at ``key``, all siblings included; None when not found (see
        RiakClient.fetch for tombstones)."""
        req = riak_pb2.RpbGetReq(bucket=_bytes(bucket, "bucket"), key=_bytes(key, "key"),
                                 type=_bytes(btype, "type"), deletedvclock=True)
        answer, _ = self._call(MessageCode.GET_REQ, req, MessageCode.GET_RESP,
                               f"GET {btype}/{bucket}/{key}", btype)
        vclock = _vclock_text(answer.vclock)
        if answer.content:
            return RiakObject(key, vclock, [_sibling(c) for c in answer.content])
        if include_tombstone and vclock:
            return RiakObject(key, vclock, [Sibling(b"", OCTET_STREAM, {}, deleted=True)])
        return None

    def store(self, btype: str, bucket: str, key: str, value: bytes,
              content_type: str = "application/json", *, vclock: str | None = None,
              indexes: dict[str, list[str] | str] | None = None,
              if_none_match: bool = False, if_not_modified: bool = False,
              returnbody: bool = False) -> RiakObject | None:
        """Write ``value`` at ``key`` (see RiakClient.store).

        ``if_not_modified``: write only if ``vclock`` is still the current one --
        RiakConflict when someone else wrote since (or the key is gone).
        """
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("riak: store() takes the value as bytes")
        if if_not_modified and not vclock:
            raise ValueError("riak: if_not_modified needs the vclock of the version read")
        content = riak_pb2.RpbContent(value=bytes(value), content_type=content_type.encode("latin-1"))
        for fieldname, terms in index_terms(indexes).items():
            for term in terms:
                content.indexes.add(key=fieldname.encode("utf-8"), value=term.encode("utf-8"))
        req = riak_pb2.RpbPutReq(bucket=_bytes(bucket, "bucket"), key=_bytes(key, "key"),
                                 type=_bytes(btype, "type"), content=content)
        if vclock:
            req.vclock = _vclock_bytes(vclock)
        if if_none_match:
            req.if_none_match = True
        if if_not_modified:
            req.if_not_modified = True
        if returnbody:
            req.return_body = True
        try:
            answer, _ = self.transport.run(
                lambda conn: conn.request(MessageCode.PUT_REQ, req, MessageCode.PUT_RESP))
        except PbErrorAnswer as exc:
            if exc.text in ("match_found", "modified", "notfound"):
                what = "exists" if exc.text == "match_found" else "was changed by someone else"
                raise RiakConflict(f"riak: key {key!r} in {btype}/{bucket} {what} ({exc.text})",
                                   body=exc.text,
                                   after_retry=getattr(exc, "maybe_applied", False)) from None
            raise request_error(f"PUT {btype}/{bucket}/{key}", exc.text, btype) from None
        if returnbody and answer.content:
            return RiakObject(key, _vclock_text(answer.vclock), [_sibling(c) for c in answer.content])
        return None

    def delete(self, btype: str, bucket: str, key: str, vclock: str | None = None) -> None:
        """Delete ``key`` (leaves a tombstone in Riak); a missing key is fine."""
        req = riak_pb2.RpbDelReq(bucket=_bytes(bucket, "bucket"), key=_bytes(key, "key"),
                                 type=_bytes(btype, "type"))
        if vclock:
            req.vclock = _vclock_bytes(vclock)
        self._call(MessageCode.DEL_REQ, req, MessageCode.DEL_RESP,
                   f"DELETE {btype}/{bucket}/{key}", btype)

    def index(self, btype: str, bucket: str, field: str, value: Any = None, *,
              start: Any = None, end: Any = None, max_results: int | None = None,
              continuation: str | None = None, return_terms: bool = False) -> IndexPage:
        """One 2i query, streamed (see RiakClient.index for the order of results)."""
        is_range = check_index_query(field, value, start, end, return_terms, max_results)
        req = riak_pb2.RpbIndexReq(bucket=_bytes(bucket, "bucket"), type=_bytes(btype, "type"),
                                   index=str(field).encode("utf-8"), stream=True,
                                   timeout=max(1, int(self.transport.timeout * 1000)))
        if is_range:
            req.qtype = riak_pb2.RpbIndexReq.range
            req.range_min = _bytes(start, "term")
            req.range_max = _bytes(end, "term")
        else:
            req.qtype = riak_pb2.RpbIndexReq.eq
            req.key = _bytes(value, "term")
        if return_terms:
            req.return_terms = True
        if max_results is not None:
            req.max_results = int(max_results)
        if continuation:
            req.continuation = continuation.encode("latin-1")
        what = f"2i query {field} on {btype}/{bucket}"
        try:
            page, _ = self.transport.run(lambda conn: _read_index_stream(conn, req))
        except PbErrorAnswer as exc:
            if "no_type" in exc.text:
                # Riak crashes the connection on a streamed query of an unknown type
                raise RiakError(f"riak: bucket type {btype} does not exist "
                                f"(on a 2i query of {btype}/{bucket})") from None
            raise request_error(what, exc.text, btype) from None
        keys, results, next_page = page
        if results:
            pairs = [(term, key) for term, key in results]
            return IndexPage([k for _, k in pairs], pairs if return_terms else [], next_page)
        return IndexPage(keys, [], next_page)


def _read_index_stream(conn: PbConnection, req: riak_pb2.RpbIndexReq):
    """Send a streamed 2i query and read its answers up to ``done``:
    (keys, (term, key) results, continuation or None)."""
    conn.send(MessageCode.INDEX_REQ, req)
    keys: list[str] = []
    results: list[tuple[str, str]] = []
    continuation = None
    while True:
        code, answer = conn.receive()
        if code != MessageCode.INDEX_RESP:
            conn.broken = True
            raise PbConnectionLost(f"answer code {code} to a 2i query")
        keys.extend(_text(k) for k in answer.keys)
        results.extend((_text(p.key), _text(p.value)) for p in answer.results)
        if answer.continuation:
            continuation = answer.continuation.decode("latin-1")
        if answer.done:
            return keys, results, continuation
