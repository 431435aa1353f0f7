"""Secondary indexes: exact and range queries, $key and $bucket,
pagination with continuations, return_terms, term_regex, stream."""

from __future__ import annotations

import bisect
import json
import re

from riaktq_testing.riak_sim.model import _TOP, _unique_id_62
from riaktq_testing.riak_sim.wire import (
    _UNDECODABLE, _WM_404, _Halt, _choose_media, _decode_continuation, _encode_continuation,
    webmachine_error_body)


class IndexMixin:
    """The request handler's 2i resource (riak_kv_wm_index)."""

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
                raise _Halt(400, f'Invalid "max_results". {q["max_results"]} '
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
                raise _Halt(400, f"Invalid query: {{field_parsing_failed,{{<<\"{fieldname}\">>,"
                                 f"<<\"{text}\">>}}}}\n") from None

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
            # Riak 3.2.2 answers a continuation that is not base64 of a term
            # with webmachine's 500 page (its binary_to_term crashes;
            # transcript 04 step 34); an empty halt renders that page.
            if cont in (None, _UNDECODABLE):
                raise _Halt(500, b"")
            if (is_range and fieldname != "$key") != (cont[0] == "r"):
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
            b = store.bucket(btype, bucket)
            hidden = store.hidden_from_2i(bucket, b.objects if b is not None else None)
            items = self._index_scan(b, fieldname, is_range, start, end, cont, regex, max_results,
                                     hidden)
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
        self._check_utf8(items)
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
    def _check_utf8(items):
        """A key that is not valid UTF-8 cannot go into Riak's JSON answer:
        the encoder crashes and webmachine answers its 500 page (05b)."""
        for item in items:
            for text in item:
                bad = next((ord(c) - 0xDC00 for c in text if "\udc80" <= c <= "\udcff"), None) \
                    if isinstance(text, str) else None
                if bad is not None:
                    raise _Halt(500, webmachine_error_body(500, f"{{error,{{invalid_byte,{bad}}}}}"),
                                ctype="text/html")

    @staticmethod
    def _index_scan(b, fieldname, is_range, start, end, cont, regex, limit, hidden=None):
        """[(term, key)] matching the query, sorted, after the continuation;
        without the keys ``hidden(key)`` leaves out."""
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
            if hidden is not None and hidden(item[1]):
                continue
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out
