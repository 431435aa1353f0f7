"""The PB front's 2i: RpbIndexReq answered from the model's index lists as
Riak 3.2.2 answers over PB -- one RpbIndexResp, or a stream ending in
``done``; its error texts, and the bad queries that crash the connection."""

from __future__ import annotations

import dataclasses
import re

from riaktq_cli.riak.pb.codes import MessageCode as Code
from riaktq_testing.riak_sim.index import IndexMixin
from riaktq_testing.riak_sim.pb_kv import STREAM_CHUNK
from riaktq_testing.riak_sim.pb_wire import (
    INTEGER, PBCrash, PBError, erl_bin, frame, has_field, pb, raw_of, text_of)
from riaktq_testing.riak_sim.wire import _UNDECODABLE, _decode_continuation, _encode_continuation


@dataclasses.dataclass
class _IndexQuery:
    """One RpbIndexReq, checked: what to scan and how to answer."""
    btype: str
    bucket: str
    fieldname: str
    is_range: bool
    start: object = None
    end: object = None
    regex: re.Pattern | None = None
    cont: list | None = None
    limit: int | None = None

    @property
    def special(self) -> bool:
        return self.fieldname in ("$key", "$bucket")

    @property
    def by_term(self) -> bool:
        """Whether pages are ordered (and continued) by term, then key."""
        return self.is_range and self.fieldname != "$key"


def _crash_in_send_error(reason: str) -> PBCrash:
    """riak_api_pb_server:send_error has no clause for some 2i errors: the
    connection process dies of a function_clause."""
    return PBCrash(f"error:function_clause:[{{riak_api_pb_server,\n  send_error,\n"
                   f"  [{reason},\n   state],\n  []}}]")


class IndexRequestsMixin:
    """RpbIndexReq for a PB connection (see ``KVRequestsMixin``)."""

    def _index(self, msg):
        query = self._index_query(msg)
        node = self.node
        items = []
        if query.limit != 0:  # max_results=0: an empty answer (HTTP says 400)
            items = _scan(node.store, query)
        if query.limit is None and query.cont is None and not msg.pagination_sort \
                and node.shuffle_unsorted:  # a coverage query's order
            node._rng.shuffle(items)
        continuation = None
        if query.limit and len(items) == query.limit:
            last_term, last_key = items[-1]
            continuation = _encode_continuation(
                ["r", last_term, last_key] if query.by_term else ["k", last_key]).encode()
        want_terms = msg.return_terms and query.is_range and not query.special

        def page(part) -> pb.RpbIndexResp:
            if want_terms:
                return pb.RpbIndexResp(results=[pb.RpbPair(key=raw_of(str(t)), value=raw_of(k))
                                                for t, k in part])
            return pb.RpbIndexResp(keys=[raw_of(k) for _, k in part])

        if not msg.stream:
            resp = page(items)
            if continuation:
                resp.continuation = continuation
            return frame(Code.INDEX_RESP, resp.SerializeToString())
        frames = [frame(Code.INDEX_RESP, page(items[i:i + STREAM_CHUNK]).SerializeToString())
                  for i in range(0, len(items), STREAM_CHUNK)]
        last = pb.RpbIndexResp(done=True)
        if continuation:
            last.continuation = continuation
        frames.append(frame(Code.INDEX_RESP, last.SerializeToString()))
        return b"".join(frames)

    def _index_query(self, msg) -> _IndexQuery:
        """The request checked in Riak's order, or the error Riak gives."""
        btype, bucket = self._names(msg)
        query = _IndexQuery(btype, bucket, text_of(msg.index).lower(),
                            msg.qtype == pb.RpbIndexReq.range)
        self._allow("riak_kv.index", btype, bucket)
        if not self._known_type(btype):
            self._unknown_type_index(msg)
        if not query.is_range and not has_field(msg, "key") and query.fieldname != "$bucket":
            raise PBError("Invalid equality query undefined")
        low = msg.range_min if has_field(msg, "range_min") else None
        high = msg.range_max if has_field(msg, "range_max") else None
        if query.is_range and (low is None or high is None):
            raise PBError(f"Invalid range query: {erl_bin(low)} -> {erl_bin(high)}")
        is_int = query.fieldname.endswith("_int") and len(query.fieldname) > 4
        if not query.special and not is_int and not (
                query.fieldname.endswith("_bin") and len(query.fieldname) > 4):
            raise _crash_in_send_error(f"{{unknown_field_type,\n    "
                                       f"{erl_bin(raw_of(query.fieldname))}}}")

        def term(raw: bytes):
            if not is_int:
                return text_of(raw)
            if not INTEGER.fullmatch(raw):
                raise _crash_in_send_error(f"{{field_parsing_failed,\n    {{"
                                           f"{erl_bin(raw_of(query.fieldname))},\n     "
                                           f"{erl_bin(raw)}}}}}")
            return int(raw)

        if query.fieldname == "$bucket":
            query.is_range = False
        elif query.is_range:
            query.start, query.end = term(low), term(high)
        else:
            query.start = term(msg.key)
        if has_field(msg, "term_regex"):
            if is_int:
                raise PBError("Can not use term regular expression in integer query")
            query.regex = _compile_term_regex(msg.term_regex)
        if has_field(msg, "continuation") and msg.continuation:
            query.cont = _decode_continuation(msg.continuation.decode("latin-1"))
            if query.cont in (None, _UNDECODABLE):  # base64/binary_to_term crash on Riak
                raise PBCrash("error:function_clause:[{base64,\n  decode_binary,\n"
                              "  [<<...>>],\n  []}]")
            if query.by_term != (query.cont[0] == "r"):
                raise PBError(f"{{invalid_continuation,{erl_bin(msg.continuation)}}}")
        if not self.node.backend_2i:
            raise PBError("{indexes_not_supported,riak_kv_bitcask_backend}")
        query.limit = msg.max_results if has_field(msg, "max_results") else None
        return query

    def _unknown_type_index(self, msg):
        """2i on a bucket type that does not exist: streamed, a crash;
        otherwise no answer until the request's timeout (none: never)."""
        if msg.stream:
            raise PBCrash("error:{badmatch,\n  {error,no_type}}:[{riak_kv_pb_index,\n"
                          "  process,\n  2,\n  []}]")
        if has_field(msg, "timeout") and msg.timeout:
            self.node._stopping.wait(msg.timeout / 1000.0)
            raise PBError("timeout")
        self._wait_for_hangup()  # secondary_index_timeout 0: infinite


def _scan(store, query: _IndexQuery) -> list[tuple]:
    """[(term, key)] of the query, from the lists the HTTP front reads too;
    while the cluster hands data to a rejoined node (``store.handoff``, a
    model-level fault of issue 23) without what this query's coverage
    misses -- as the HTTP front's ``IndexMixin._index`` does."""
    with store.lock:
        b = store.bucket(query.btype, query.bucket)
        hidden = store.hidden_from_2i(query.bucket, b.objects if b is not None else None)
        return IndexMixin._index_scan(b, query.fieldname, query.is_range, query.start, query.end,
                                      query.cont, query.regex, query.limit, hidden)


def _compile_term_regex(raw: bytes) -> re.Pattern:
    """The term filter, with Riak's (PCRE's) words for a bad expression."""
    try:
        return re.compile(text_of(raw))
    except re.error as exc:
        words, pos = exc.msg, exc.pos or 0
        if words.startswith("missing ), unterminated subpattern"):
            words, pos = "missing )", len(raw)
        raise PBError(f"Invalid term regular expression {erl_bin(raw)} : "
                      f"{{\"{words}\",{pos}}}") from None
