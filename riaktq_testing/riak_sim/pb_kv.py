"""The PB front's requests: get/put/delete, 2i, bucket and type props, key
listing, ping, server info -- answered from the node's model as Riak 3.2.2
answers them over PB (its error texts included; see the PB transcripts)."""

from __future__ import annotations

import base64
import re

from riaktq_cli.riak.pb.codes import MessageCode as Code
from riaktq_testing.riak_sim.index import IndexMixin
from riaktq_testing.riak_sim.model import _Sib, _unique_id_62, decode_vclock, encode_vclock
from riaktq_testing.riak_sim.security import permission_denied
from riaktq_testing.riak_sim.pb_wire import PBCrash, PBError, frame, pb
from riaktq_testing.riak_sim.wire import _UNDECODABLE, _decode_continuation, _encode_continuation

_SYMBOLIC_QUORUMS = {"one": 4294967294, "quorum": 4294967293, "all": 4294967292,
                     "default": 4294967291}
_LOWEST_SYMBOLIC = min(_SYMBOLIC_QUORUMS.values())
_MAX_KEY_BYTES = 65536
_META_PREFIX = "X-Riak-Meta-"  # usermeta is kept as the HTTP front's header names
_INTEGER = re.compile(rb"[+-]?[0-9]+")
_STREAM_CHUNK = 500  # results per streamed message (Riak: per vnode answer)
_SERVER_VERSION = b"3.2.2-riaktq-test"


def _text(raw: bytes) -> str:
    """Bucket names, keys and 2i terms as the model keeps them (str; bytes
    that are not UTF-8 survive as surrogates, as on the HTTP front)."""
    return raw.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _erl_bin(raw: bytes | None) -> str:
    """A binary as Erlang prints it: <<"abc">>, <<1,2>>, or undefined."""
    if raw is None:
        return "undefined"
    if all(32 <= b < 127 for b in raw):
        return '<<"' + raw.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') + '">>'
    return "<<" + ",".join(str(b) for b in raw) + ">>"


def _has(msg, name: str) -> bool:
    """Whether an optional field was sent (False when our .proto lacks it)."""
    return name in msg.DESCRIPTOR.fields_by_name and msg.HasField(name)


def pb_vclock(clock: dict[str, int]) -> bytes:
    """The PB vclock: the bytes whose base64 is the HTTP X-Riak-Vclock, as on Riak."""
    return base64.b64decode(encode_vclock(clock))


def _clock_from_pb(msg, name: str = "vclock") -> dict[str, int] | None:
    if not _has(msg, name) or not getattr(msg, name):
        return None
    clock = decode_vclock(base64.b64encode(getattr(msg, name)).decode())
    if clock is None:  # riak_object:decode_vclock's binary_to_term fails
        raise PBCrash("error:badarg:[{erlang,\n  binary_to_term,\n  [<<...>>],\n  []}]")
    return clock


class KVRequestsMixin:
    """The request handlers of a PB connection (``self.node``: the
    RiakTestServer; ``self.user``: the authenticated user or None).  Each
    returns the frames to send; errors are raised as PBError / PBCrash."""

    # -- shared checks ---------------------------------------------------

    def _names(self, msg) -> tuple[str, str]:
        btype = _text(msg.type) if _has(msg, "type") else "default"
        return btype, _text(msg.bucket) if _has(msg, "bucket") else ""

    def _check_names(self, msg, *, type_too: bool = False) -> None:
        if _has(msg, "bucket") and not msg.bucket:
            raise PBError("Bucket cannot be zero-length")
        if _has(msg, "key") and not msg.key:
            raise PBError("Key cannot be zero-length")
        if type_too and _has(msg, "type") and not msg.type:
            raise PBError("Type cannot be zero-length")

    def _allow(self, perm: str, btype: str, bucket: str | None = None) -> None:
        security = self.node.security
        if security is not None and not security.allowed(self.user, perm, btype, bucket):
            raise PBError(permission_denied(self.user, perm, btype, bucket))

    def _known_type(self, btype: str) -> bool:
        return btype in self.node.store.types

    def _check_quorums(self, msg, btype: str, bucket: str, names) -> None:
        """The FSMs' check of quorum values against n_val (symbolic values
        one/quorum/all/default sit just below 2**32)."""
        n_val = self.node.store.props(btype, bucket)["n_val"]
        for name in names:
            if _has(msg, name):
                value = getattr(msg, name)
                if n_val < value < _LOWEST_SYMBOLIC:
                    raise PBError(f"{{n_val_violation,{n_val}}}")

    # -- plain requests --------------------------------------------------

    def _ping(self, _msg):
        return frame(Code.PING_RESP)

    def _get_client_id(self, _msg):
        return frame(Code.GET_CLIENT_ID_RESP, pb.RpbGetClientIdResp(client_id=b"\0\0\0\0").SerializeToString())

    def _server_info(self, _msg):
        info = pb.RpbGetServerInfoResp(node=self.node.node_name.encode(),
                                       server_version=_SERVER_VERSION)
        return frame(Code.GET_SERVER_INFO_RESP, info.SerializeToString())

    # -- objects ---------------------------------------------------------

    @staticmethod
    def _fill_content(out, sib: _Sib, head: bool) -> None:
        out.value = b"" if head else sib.value
        if sib.ctype is not None:
            out.content_type = sib.ctype.encode("latin-1", "replace")
        if sib.charset:
            out.charset = sib.charset.encode("latin-1", "replace")
        if sib.encoding:
            out.content_encoding = sib.encoding.encode("latin-1", "replace")
        out.vtag = sib.vtag.encode()
        for bucket, key, tag in sib.links:
            link = out.links.add()
            link.bucket, link.key, link.tag = bucket, key, tag
        out.last_mod = int(sib.lastmod)
        out.last_mod_usecs = int(round((sib.lastmod % 1) * 1e6)) % 1000000
        for name, value in sib.meta:
            pair = out.usermeta.add()
            short = name[len(_META_PREFIX):] if name.lower().startswith(_META_PREFIX.lower()) \
                else name
            pair.key, pair.value = short.encode("latin-1", "replace"), \
                value.encode("latin-1", "replace")
        for fieldname, term in sib.indexes:
            pair = out.indexes.add()
            pair.key, pair.value = _raw(fieldname), _raw(str(term))
        if sib.deleted:
            out.deleted = True

    def _get(self, msg):
        self._check_names(msg, type_too=True)
        btype, bucket = self._names(msg)
        self._allow("riak_kv.get", btype, bucket)
        if not self._known_type(btype):
            raise PBError("no_type")
        self._check_quorums(msg, btype, bucket, ("r", "pr", "node_confirms"))
        resp = pb.RpbGetResp()
        if not _has(msg, "key") or len(msg.key) > _MAX_KEY_BYTES:
            return frame(Code.GET_RESP, resp.SerializeToString())
        store = self.node.store
        with store.lock:  # answer from a snapshot: never write to a socket under the lock
            obj = store.lookup(store.bucket(btype, bucket), _text(msg.key))
            obj = obj.snapshot() if obj is not None else None
        if obj is None:
            return frame(Code.GET_RESP, resp.SerializeToString())
        if obj.is_tombstone:
            if msg.deletedvclock:
                resp.vclock = pb_vclock(obj.vclock)
            return frame(Code.GET_RESP, resp.SerializeToString())
        if _has(msg, "if_modified") and _clock_from_pb(msg, "if_modified") == obj.vclock:
            resp.unchanged = True
            return frame(Code.GET_RESP, resp.SerializeToString())
        for sib in obj.siblings:
            self._fill_content(resp.content.add(), sib, msg.head)
        resp.vclock = pb_vclock(obj.vclock)
        return frame(Code.GET_RESP, resp.SerializeToString())

    @staticmethod
    def _parse_indexes(content) -> list[tuple[str, object]]:
        """Index entries of a put, as the 2i precommit hook checks them:
        names lower-cased, _int values normalised, bad ones refused."""
        entries, errors = set(), []
        for pair in content.indexes:
            name = _text(pair.key).lower()
            if name.endswith("_bin") and len(name) > 4:
                entries.add((name, _text(pair.value)))
            elif name.endswith("_int") and len(name) > 4:
                if _INTEGER.fullmatch(pair.value):
                    entries.add((name, int(pair.value)))
                else:
                    errors.append(f"{{field_parsing_failed,{{{_erl_bin(_raw(name))},"
                                  f"{_erl_bin(pair.value)}}}}}")
            else:
                errors.append(f"{{unknown_field_type,{_erl_bin(_raw(name))}}}")
        if errors:
            raise PBError("{precommit_fail,[" + ",".join(errors) + "]}")
        return sorted(entries)

    def _put(self, msg):
        self._check_names(msg, type_too=True)
        btype, bucket = self._names(msg)
        self._allow("riak_kv.put", btype, bucket)
        if not self._known_type(btype):
            raise PBError("no_type")
        if not msg.HasField("content"):
            raise PBCrash("error:{badrecord,undefined}:[{riak_pb_kv_codec,\n  decode_content,\n"
                          "  1,\n  [{file,\"src/riak_pb_kv_codec.erl\"}]}]")
        generated = not _has(msg, "key")
        key = _unique_id_62() if generated else _text(msg.key)
        if len(_raw(key)) > _MAX_KEY_BYTES:
            raise PBCrash("throw:{error,key_too_large}:[{riak_object,\n  new,\n  4,\n"
                          "  [{file,\"src/riak_object.erl\"}]}]")
        content = msg.content
        indexes = self._parse_indexes(content)
        self._check_quorums(msg, btype, bucket, ("w", "dw", "pw", "node_confirms"))
        clock = _clock_from_pb(msg)
        ctx = clock or {}

        def header(name):
            return getattr(content, name).decode("latin-1") if _has(content, name) else None

        sib = _Sib(content.value, header("content_type"), header("charset"),
                   header("content_encoding"),
                   [(_META_PREFIX + p.key.decode("latin-1"), p.value.decode("latin-1"))
                    for p in content.usermeta],
                   indexes, False, None)
        sib.links = [(link.bucket, link.key, link.tag) for link in content.links]
        node, store = self.node, self.node.store
        with store.lock:
            current = store.lookup(store.bucket(btype, bucket), key)
            exists = current is not None and not current.is_tombstone
            if msg.if_not_modified:
                if not exists:
                    raise PBError("notfound")
                if clock != current.vclock:
                    raise PBError("modified")
            if msg.if_none_match and exists:
                raise PBError("match_found")
            concurrent = bool(ctx) and node._faults.take_storm()
            obj = store.write(btype, bucket, key, sib, ctx, node.actor, concurrent).snapshot()
        resp = pb.RpbPutResp()
        if msg.return_body or msg.return_head:
            for s in obj.siblings:
                self._fill_content(resp.content.add(), s, bool(msg.return_head))
            resp.vclock = pb_vclock(obj.vclock)
        if generated:
            resp.key = _raw(key)
        return frame(Code.PUT_RESP, resp.SerializeToString())

    def _delete(self, msg):
        # Riak checks neither empty names nor (without a vclock) existence here.
        btype, bucket = self._names(msg)
        self._allow("riak_kv.delete", btype, bucket)
        if not self._known_type(btype):
            raise PBError("no_type")
        self._check_quorums(msg, btype, bucket, ("rw", "r", "w", "pr", "pw", "dw"))
        clock = _clock_from_pb(msg)
        key = _text(msg.key)
        store = self.node.store
        with store.lock:
            current = store.lookup(store.bucket(btype, bucket), key)
            if clock is None and current is not None and not current.is_tombstone:
                clock = current.vclock  # without a clock Riak deletes what it reads
            if clock is not None:  # a clock on a missing key still leaves a tombstone
                tomb = _Sib(b"", None, None, None, [], [], True, None)
                store.write(btype, bucket, key, tomb, clock, self.node.actor)
        return frame(Code.DEL_RESP)

    # -- listing and props -------------------------------------------------

    def _list_keys(self, msg):
        btype, bucket = self._names(msg)
        self._allow("riak_kv.list_keys", btype, bucket)
        if not self._known_type(btype):
            raise PBError("no_type")
        store = self.node.store
        with store.lock:
            b = store.bucket(btype, bucket)
            keys = [k for k in list(b.objects) if store.lookup(b, k) is not None] if b else []
        frames = [frame(Code.LIST_KEYS_RESP, pb.RpbListKeysResp(keys=[_raw(k) for k in keys[i:i + _STREAM_CHUNK]])
                        .SerializeToString()) for i in range(0, len(keys), _STREAM_CHUNK)]
        frames.append(frame(Code.LIST_KEYS_RESP, pb.RpbListKeysResp(done=True).SerializeToString()))
        return b"".join(frames)

    def _props_frame(self, props: dict) -> bytes:
        """RpbGetBucketResp: what riak_pb_codec encodes of the props (no
        dvv_enabled, no hook lists; quorums as their symbolic numbers)."""
        out = pb.RpbBucketProps()
        for name in ("n_val", "old_vclock", "young_vclock", "big_vclock", "small_vclock"):
            setattr(out, name, props[name])
        for name in ("allow_mult", "last_write_wins", "basic_quorum", "notfound_ok"):
            setattr(out, name, bool(props[name]))
        out.has_precommit = out.has_postcommit = True  # the 2i hook; riak_repl's
        for name, field in (("chash_keyfun", out.chash_keyfun), ("linkfun", out.linkfun)):
            field.module, field.function = props[name]["mod"].encode(), props[name]["fun"].encode()
        for name in ("pr", "r", "w", "pw", "dw", "rw"):
            value = props[name]
            setattr(out, name, _SYMBOLIC_QUORUMS[value] if isinstance(value, str) else int(value))
        if "repl" in props:
            out.repl = pb.RpbBucketProps.TRUE if props["repl"] is True else \
                pb.RpbBucketProps.FALSE if props["repl"] is False else \
                pb.RpbBucketProps.RpbReplMode.Value(str(props["repl"]).upper())
        if "write_once" in props:
            out.write_once = bool(props["write_once"])
        return frame(Code.GET_BUCKET_RESP, pb.RpbGetBucketResp(props=out).SerializeToString())

    def _bucket_props(self, msg):
        btype, bucket = self._names(msg)
        self._allow("riak_core.get_bucket", btype, bucket)
        if not self._known_type(btype):
            raise PBError(f"No bucket-type named '{btype}'")
        with self.node.store.lock:
            props = self.node.store.props(btype, bucket)
        return self._props_frame(props)

    def _type_props(self, msg):
        btype = _text(msg.type)
        self._allow("riak_core.get_bucket_type", btype)
        if not self._known_type(btype):
            raise PBError(f"Invalid bucket type: {_erl_bin(msg.type)}")
        with self.node.store.lock:
            props = dict(self.node.store.types[btype])
        return self._props_frame(props)

    # -- secondary indexes -------------------------------------------------

    def _index(self, msg):
        node = self.node
        btype, bucket = self._names(msg)
        fieldname = _text(msg.index).lower()
        self._allow("riak_kv.index", btype, bucket)
        if not self._known_type(btype):
            if msg.stream:
                raise PBCrash("error:{badmatch,\n  {error,no_type}}:[{riak_kv_pb_index,\n"
                              "  process,\n  2,\n  []}]")
            if _has(msg, "timeout") and msg.timeout:
                node._stopping.wait(msg.timeout / 1000.0)
                raise PBError("timeout")
            self._wait_for_hangup()  # secondary_index_timeout 0: no answer ever
        is_range = msg.qtype == pb.RpbIndexReq.range
        if not is_range and not _has(msg, "key") and fieldname != "$bucket":
            raise PBError("Invalid equality query undefined")
        if is_range and not (_has(msg, "range_min") and _has(msg, "range_max")):
            raise PBError(f"Invalid range query: "
                          f"{_erl_bin(msg.range_min if _has(msg, 'range_min') else None)} -> "
                          f"{_erl_bin(msg.range_max if _has(msg, 'range_max') else None)}")
        special = fieldname in ("$key", "$bucket")
        is_int = fieldname.endswith("_int") and len(fieldname) > 4
        if not special and not is_int and not (fieldname.endswith("_bin") and len(fieldname) > 4):
            raise PBCrash(f"error:function_clause:[{{riak_api_pb_server,\n  send_error,\n"
                          f"  [{{unknown_field_type,\n    {_erl_bin(_raw(fieldname))}}},\n"
                          f"   state],\n  []}}]")

        def term(raw: bytes):
            if not is_int:
                return _text(raw)
            if not _INTEGER.fullmatch(raw):
                raise PBCrash(f"error:function_clause:[{{riak_api_pb_server,\n  send_error,\n"
                              f"  [{{field_parsing_failed,\n    {{{_erl_bin(_raw(fieldname))},\n"
                              f"     {_erl_bin(raw)}}}}},\n   state],\n  []}}]")
            return int(raw)

        if fieldname == "$bucket":
            is_range, start, end = False, None, None
        elif is_range:
            start, end = term(msg.range_min), term(msg.range_max)
        else:
            start, end = term(msg.key), None
        regex = None
        if _has(msg, "term_regex"):
            if is_int:
                raise PBError("Can not use term regular expression in integer query")
            regex = self._compile_term_regex(msg.term_regex)
        cont = None
        if _has(msg, "continuation") and msg.continuation:
            cont = _decode_continuation(msg.continuation.decode("latin-1"))
            if cont in (None, _UNDECODABLE):
                raise PBCrash("error:function_clause:[{base64,\n  decode_binary,\n"
                              "  [<<...>>],\n  []}]")
            if (is_range and fieldname != "$key") != (cont[0] == "r"):
                raise PBError(f"{{invalid_continuation,{_erl_bin(msg.continuation)}}}")
        if not node.backend_2i:
            raise PBError("{indexes_not_supported,riak_kv_bitcask_backend}")
        limit = msg.max_results if _has(msg, "max_results") else None
        items = []
        if limit != 0:  # max_results=0: an empty answer (HTTP says 400)
            store = node.store
            with store.lock:
                items = IndexMixin._index_scan(store.bucket(btype, bucket), fieldname, is_range,
                                               start, end, cont, regex, limit)
        if not (limit is not None or cont is not None or msg.pagination_sort) \
                and node.shuffle_unsorted:
            node._rng.shuffle(items)
        continuation = None
        if limit and len(items) == limit:
            last_term, last_key = items[-1]
            continuation = _encode_continuation(
                ["r", last_term, last_key] if is_range and fieldname != "$key"
                else ["k", last_key]).encode()
        want_terms = msg.return_terms and is_range and not special

        def page(part) -> pb.RpbIndexResp:
            if want_terms:
                return pb.RpbIndexResp(results=[pb.RpbPair(key=_raw(str(t)), value=_raw(k))
                                                for t, k in part])
            return pb.RpbIndexResp(keys=[_raw(k) for _, k in part])

        if not msg.stream:
            resp = page(items)
            if continuation:
                resp.continuation = continuation
            return frame(Code.INDEX_RESP, resp.SerializeToString())
        frames = [frame(Code.INDEX_RESP, page(items[i:i + _STREAM_CHUNK]).SerializeToString())
                  for i in range(0, len(items), _STREAM_CHUNK)]
        last = pb.RpbIndexResp(done=True)
        if continuation:
            last.continuation = continuation
        frames.append(frame(Code.INDEX_RESP, last.SerializeToString()))
        return b"".join(frames)

    @staticmethod
    def _compile_term_regex(raw: bytes):
        """The term filter, with Riak's (PCRE's) words for a bad expression."""
        text = _text(raw)
        try:
            return re.compile(text)
        except re.error as exc:
            words = exc.msg
            if words.startswith("missing ), unterminated subpattern"):
                words, pos = "missing )", len(raw)
            else:
                pos = exc.pos or 0
            raise PBError(f"Invalid term regular expression {_erl_bin(raw)} : "
                          f"{{\"{words}\",{pos}}}") from None

