"""Objects: GET (one value, siblings, tombstones), PUT/POST with
indexes and conditions, DELETE -- as riak_kv_wm_object answers."""

from __future__ import annotations

import re

from riaktq_testing.riak_sim.model import (
    _Obj, _Sib, _http_date, _unique_id_62, decode_vclock, encode_vclock)
from riaktq_testing.riak_sim.wire import (
    _Halt, _choose_media, _header_to_text, _parse_content_type, _quote_plus, _text_to_header)


class ObjectsMixin:
    """The request handler's object resource."""

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
        self._check_n_val(btype, bucket, ("r", "pr"))
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
            raise _Halt(400, "Missing Content-Type request header")
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
        self._check_n_val(btype, bucket, ("w", "dw", "pw", "node_confirms"))
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
        if not returnbody:  # a 201 carries the negotiated type (the value's), a 204 none
            return self._send(201 if generated else 204, b"", headers, ctype=media if generated else None)
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
        # Without an Accept header the vtag list; with one, multipart first
        # (even for */*, where a GET gives the list): transcript 03, steps 12-14.
        accept = self.headers.get("Accept")
        choice = "text/plain" if accept is None else \
            _choose_media(["multipart/mixed", "text/plain"], accept)
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
