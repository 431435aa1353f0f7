"""The data a node keeps: bucket types and props, objects with dotted
version vectors, siblings, tombstones, 2i entries (no HTTP here)."""

from __future__ import annotations

import base64
import bisect
import email.utils
import hashlib
import json
import random
import string
import threading
import time
import zlib


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
    "young_vclock": 20,
}
# riak_repl appends {repl, true} to the default bucket props (not to types);
# write_once too is only in the default type's (HTTP 06 step 3, PB 10 step 3).
DEFAULT_TYPE_PROPS = {**_COMMON_PROPS, "allow_mult": False, "dvv_enabled": False, "repl": True,
                      "write_once": False}
NEW_TYPE_PROPS = {**_COMMON_PROPS, "allow_mult": True, "dvv_enabled": True, "active": True,
                  "claimant": "riak@127.0.0.1"}


_B62 = string.digits + string.ascii_letters
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
                 "lastmod", "dot", "links")

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
        self.links: list[tuple[bytes, bytes, bytes]] = []  # (bucket, key, tag), set over PB

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
        self.nodes: list = []  # the RiakTestServers serving this data (the ring's members)
        self.handoff = None  # faults.Handoff after a simulated rejoin

    def hidden_from_2i(self, bucket: str, objects):
        """None, or the filter one 2i query applies while the cluster hands
        data to a rejoined node (faults.Handoff): this query's coverage plan
        is drawn here, and the filter says which keys of ``objects`` (the
        bucket's) it leaves out. Both fronts call it, under ``self.lock``."""
        handoff = self.handoff
        if handoff is None or not handoff.active() or objects is None:
            return None
        covered = handoff.coverage()

        def hidden(key):
            obj = objects.get(key)
            if obj is None:
                return False
            written = max((s.lastmod for s in obj.siblings), default=0.0)
            return handoff.hides(bucket, key, written, covered)
        return hidden

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
