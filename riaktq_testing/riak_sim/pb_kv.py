"""The PB front's requests: get/put/delete, bucket and type props, key
listing, ping, server info (2i: ``pb_index``) -- answered from the node's model as Riak 3.2.2
answers them over PB (its error texts included; see the PB transcripts)."""

from __future__ import annotations

import base64

from riaktq_cli.riak.pb.codes import MessageCode as Code
from riaktq_testing.riak_sim.model import _Sib, _unique_id_62, decode_vclock, encode_vclock
from riaktq_testing.riak_sim.security import permission_denied
from riaktq_testing.riak_sim.pb_wire import (
    INTEGER, PBCrash, PBError, erl_bin, frame, has_field, pb, raw_of, text_of)

_SYMBOLIC_QUORUMS = {"one": 4294967294, "quorum": 4294967293, "all": 4294967292,
                     "default": 4294967291}
_LOWEST_SYMBOLIC = min(_SYMBOLIC_QUORUMS.values())
_MAX_KEY_BYTES = 65536
_META_PREFIX = "X-Riak-Meta-"  # usermeta is kept as the HTTP front's header names
STREAM_CHUNK = 500  # results per streamed message (Riak: per vnode answer)
_SERVER_VERSION = b"3.2.2-riaktq-test"


def pb_vclock(clock: dict[str, int]) -> bytes:
    """The PB vclock: the bytes whose base64 is the HTTP X-Riak-Vclock, as on Riak."""
    return base64.b64decode(encode_vclock(clock))


def _clock_from_pb(msg, name: str = "vclock") -> dict[str, int] | None:
    if not has_field(msg, name) or not getattr(msg, name):
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
        btype = text_of(msg.type) if has_field(msg, "type") else "default"
        return btype, text_of(msg.bucket) if has_field(msg, "bucket") else ""

    def _kv_target(self, msg, perm: str, *, check_names: bool = True) -> tuple[str, str]:
        """(type, bucket) of a KV request, after Riak's checks: empty names
        (get and put only), the user's grant, the bucket type's existence."""
        if check_names:
            if has_field(msg, "bucket") and not msg.bucket:
                raise PBError("Bucket cannot be zero-length")
            if has_field(msg, "key") and not msg.key:
                raise PBError("Key cannot be zero-length")
            if has_field(msg, "type") and not msg.type:
                raise PBError("Type cannot be zero-length")
        btype, bucket = self._names(msg)
        self._allow(perm, btype, bucket)
        if not self._known_type(btype):
            raise PBError("no_type")
        return btype, bucket

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
            if has_field(msg, name):
                value = getattr(msg, name)
                if n_val < value < _LOWEST_SYMBOLIC:
                    raise PBError(f"{{n_val_violation,{n_val}}}")

    # -- plain requests --------------------------------------------------

    def _ping(self, _msg):
        return frame(Code.PING_RESP)

    def _get_client_id(self, _msg):
        legacy = pb.RpbGetClientIdResp(client_id=b"\0\0\0\0")
        return frame(Code.GET_CLIENT_ID_RESP, legacy.SerializeToString())

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
            pair.key, pair.value = raw_of(fieldname), raw_of(str(term))
        if sib.deleted:
            out.deleted = True

    def _get(self, msg):
        btype, bucket = self._kv_target(msg, "riak_kv.get")
        self._check_quorums(msg, btype, bucket, ("r", "pr", "node_confirms"))
        resp = pb.RpbGetResp()
        if not has_field(msg, "key") or len(msg.key) > _MAX_KEY_BYTES:
            return frame(Code.GET_RESP, resp.SerializeToString())
        store = self.node.store
        with store.lock:  # answer from a snapshot: never write to a socket under the lock
            obj = store.lookup(store.bucket(btype, bucket), text_of(msg.key))
            obj = obj.snapshot() if obj is not None else None
        if obj is None:
            return frame(Code.GET_RESP, resp.SerializeToString())
        if obj.is_tombstone:
            if msg.deletedvclock:
                resp.vclock = pb_vclock(obj.vclock)
            return frame(Code.GET_RESP, resp.SerializeToString())
        if has_field(msg, "if_modified") and _clock_from_pb(msg, "if_modified") == obj.vclock:
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
            name = text_of(pair.key).lower()
            if name.endswith("_bin") and len(name) > 4:
                entries.add((name, text_of(pair.value)))
            elif name.endswith("_int") and len(name) > 4:
                if INTEGER.fullmatch(pair.value):
                    entries.add((name, int(pair.value)))
                else:
                    errors.append(f"{{field_parsing_failed,{{{erl_bin(raw_of(name))},"
                                  f"{erl_bin(pair.value)}}}}}")
            else:
                errors.append(f"{{unknown_field_type,{erl_bin(raw_of(name))}}}")
        if errors:
            raise PBError("{precommit_fail,[" + ",".join(errors) + "]}")
        return sorted(entries)

    def _put(self, msg):
        btype, bucket = self._kv_target(msg, "riak_kv.put")
        if not msg.HasField("content"):
            raise PBCrash("error:{badrecord,undefined}:[{riak_pb_kv_codec,\n  decode_content,\n"
                          "  1,\n  [{file,\"src/riak_pb_kv_codec.erl\"}]}]")
        generated = not has_field(msg, "key")
        key = _unique_id_62() if generated else text_of(msg.key)
        if len(raw_of(key)) > _MAX_KEY_BYTES:
            raise PBCrash("throw:{error,key_too_large}:[{riak_object,\n  new,\n  4,\n"
                          "  [{file,\"src/riak_object.erl\"}]}]")
        content = msg.content
        indexes = self._parse_indexes(content)
        self._check_quorums(msg, btype, bucket, ("w", "dw", "pw", "node_confirms"))
        clock = _clock_from_pb(msg)
        ctx = clock or {}

        def header(name):
            return getattr(content, name).decode("latin-1") if has_field(content, name) else None

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
            resp.key = raw_of(key)
        return frame(Code.PUT_RESP, resp.SerializeToString())

    def _delete(self, msg):
        # Riak checks neither empty names nor (without a vclock) existence here.
        btype, bucket = self._kv_target(msg, "riak_kv.delete", check_names=False)
        self._check_quorums(msg, btype, bucket, ("rw", "r", "w", "pr", "pw", "dw"))
        clock = _clock_from_pb(msg)
        key = text_of(msg.key)
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
        btype, bucket = self._kv_target(msg, "riak_kv.list_keys", check_names=False)
        store = self.node.store
        with store.lock:
            b = store.bucket(btype, bucket)
            keys = [k for k in list(b.objects) if store.lookup(b, k) is not None] if b else []
        frames = [frame(Code.LIST_KEYS_RESP,
                        pb.RpbListKeysResp(keys=[raw_of(k) for k in keys[i:i + STREAM_CHUNK]])
                        .SerializeToString()) for i in range(0, len(keys), STREAM_CHUNK)]
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
        btype = text_of(msg.type)
        self._allow("riak_core.get_bucket_type", btype)
        if not self._known_type(btype):
            raise PBError(f"Invalid bucket type: {erl_bin(msg.type)}")
        with self.node.store.lock:
            props = dict(self.node.store.types[btype])
        return self._props_frame(props)
