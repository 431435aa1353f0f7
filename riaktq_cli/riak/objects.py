"""Riak objects: fetch (with siblings), store (with vclock and 2i), delete.

The points that are easy to get wrong:

* Vector clocks are opaque: sent back exactly as received.
* Siblings come as a ``300 Multiple Choices``; asking for
  ``multipart/mixed`` gets every sibling in one round trip.  Tombstone
  siblings are kept (flagged ``deleted``) so the caller can resolve them.
* Header values travel as Latin-1 in http.client; index terms are sent and
  read back as UTF-8 bytes, so non-ASCII terms round-trip.
* Riak splits an index header's values on a comma followed by whitespace,
  so a term containing one is refused rather than silently becoming two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import urllib3

from .errors import RiakConflict, RiakError, check_unknown_type, one_line, unexpected
from .multipart import MultipartError, boundary_of, parse_multipart
from .transport import ACCEPT_ANY, Transport, key_path

# What we ask for on fetches and returnbody: every sibling as a part when
# there are several, and otherwise the object in whatever type it was stored
# (Riak answers 406 to an Accept its stored Content-Type does not match).
ACCEPT_SIBLINGS = "multipart/mixed, */*;q=0.5"

_SPLIT_VALUES = re.compile(r",\s")  # how Riak splits an index header's values


@dataclass
class Sibling:
    """One value of a Riak object (an object has several when siblings exist)."""

    value: bytes
    content_type: str
    indexes: dict[str, list[str]]  # field name lower-cased, e.g. {"status_bin": ["todo"]}
    deleted: bool = False  # a tombstone sibling (left by a delete)


@dataclass
class RiakObject:
    """A fetched object: its key, vector clock and one or more siblings."""

    key: str
    vclock: str | None  # exactly as received, to send back
    siblings: list[Sibling]  # 1 element normally; >1 when Riak returned 300

    @property
    def deleted(self) -> bool:
        """True when every sibling is a tombstone."""
        return all(s.deleted for s in self.siblings)

    @property
    def live_siblings(self) -> list[Sibling]:
        """The siblings that are not tombstones."""
        return [s for s in self.siblings if not s.deleted]

    @property
    def value(self) -> bytes:
        """The one value; ValueError while there are siblings to resolve."""
        if len(self.siblings) != 1:
            raise ValueError(
                f"riak object {self.key!r} has {len(self.siblings)} siblings; "
                "resolve them (see .siblings) before using .value")
        return self.siblings[0].value


# --------------------------------------------------------------------------
# Headers


def _latin1_to_text(value: str) -> str:
    """Undo http.client's Latin-1 header decoding when the bytes were UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _index_value(name: str, fieldname: str, value) -> str:
    text = str(value)
    if _SPLIT_VALUES.search(text):
        raise ValueError(f"index value {text!r} of {name} contains a comma "
                         "followed by whitespace, which Riak would split")
    if "\r" in text or "\n" in text:
        raise ValueError(f"index value {text!r} of {name} contains a line break")
    if fieldname.endswith("_int"):
        try:
            int(text)
        except ValueError:
            raise ValueError(f"index value {text!r} of {name} is not an integer") from None
    return text


def index_terms(indexes: dict[str, list[str] | str | int] | None) -> dict[str, list[str]]:
    """``{"Status_bin": "todo"}`` -> ``{"status_bin": ["todo"]}``, checked: the same rules on
    every API, so an object stored through one reads back the same through the other."""
    terms: dict[str, list[str]] = {}
    for name, values in (indexes or {}).items():
        fieldname = str(name).lower()
        if not (fieldname.endswith("_bin") or fieldname.endswith("_int")) or len(fieldname) <= 4:
            raise ValueError(f"index field {name!r} must end in _bin or _int")
        if isinstance(values, (str, int)):
            values = [values]
        texts = [_index_value(name, fieldname, value) for value in values]
        if texts:
            terms[fieldname] = texts
    return terms


def index_headers(indexes: dict[str, list[str] | str | int] | None) -> dict[str, str]:
    """``{"status_bin": ["todo"]}`` -> ``{"X-Riak-Index-status_bin": "todo"}``."""
    # UTF-8 bytes, passed through http.client's Latin-1 encoding
    return {"X-Riak-Index-" + fieldname: ", ".join(texts).encode("utf-8").decode("latin-1")
            for fieldname, texts in index_terms(indexes).items()}


def sibling_from_headers(pairs: list[tuple[str, str]], value: bytes) -> Sibling:
    """Build a Sibling from (lower-cased name, value) header pairs.

    Works for both a 200 response (one ``X-Riak-Index-F: a, b`` line per
    field) and a multipart part (one line per value): values are split on
    ``", "`` either way, which is safe because Riak itself splits on it
    when storing, so no stored value contains it.
    """
    content_type = "application/octet-stream"
    deleted = False
    indexes: dict[str, list[str]] = {}
    for name, raw in pairs:
        if name == "content-type":
            content_type = raw
        elif name == "x-riak-deleted":
            deleted = deleted or raw.strip().lower() == "true"
        elif name.startswith("x-riak-index-"):
            fieldname = name[len("x-riak-index-"):]
            bucket = indexes.setdefault(fieldname, [])
            for item in raw.split(", "):
                item = _latin1_to_text(item.strip())
                if item not in bucket:
                    bucket.append(item)
    return Sibling(value=value, content_type=content_type, indexes=indexes, deleted=deleted)


def _headers_of(resp: urllib3.BaseHTTPResponse) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in resp.headers.items()]


# --------------------------------------------------------------------------
# Calls


class ObjectCalls:
    """fetch, store and delete of RiakClient; relies on its ``transport``."""

    transport: Transport

    def fetch(self, btype: str, bucket: str, key: str, *,
              include_tombstone: bool = False) -> RiakObject | None:
        """The object at ``key``, all siblings included; None when not found.

        A tombstone (a deleted key not yet reaped) is also None, unless
        ``include_tombstone`` is set: then it is an object with one deleted
        sibling and the tombstone's vclock, which is the clock to send when
        re-creating the key (without it, the new value and the tombstone
        become siblings).
        """
        path = key_path(btype, bucket, key)
        resp, _ = self.transport.call("GET", path, headers={"Accept": ACCEPT_SIBLINGS})
        if resp.status in (200, 300):
            return self._object_from(key, resp, btype, bucket)
        if resp.status == 404:
            check_unknown_type(btype, resp)
            vclock = resp.headers.get("X-Riak-Vclock")
            if include_tombstone and vclock and resp.headers.get("X-Riak-Deleted") == "true":
                return RiakObject(key, vclock, [Sibling(b"", "application/octet-stream", {},
                                                        deleted=True)])
            return None
        raise unexpected("GET", path, resp)

    def store(self, btype: str, bucket: str, key: str, value: bytes,
              content_type: str = "application/json", *, vclock: str | None = None,
              indexes: dict[str, list[str] | str] | None = None,
              if_none_match: bool = False, returnbody: bool = False) -> RiakObject | None:
        """Write ``value`` at ``key``; every write replaces the index set.

        ``vclock``: the clock of the version this write supersedes (from a
        fetch); without it an allow_mult bucket keeps the old value as a
        sibling.  ``if_none_match``: create only -- RiakConflict when the key
        exists; ``after_retry`` on it says a lost first attempt may be the
        one that created it.  ``returnbody``: return the object as stored,
        siblings included.
        """
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("riak: store() takes the value as bytes")
        path = key_path(btype, bucket, key)
        headers = {"Content-Type": content_type,
                   "Accept": ACCEPT_SIBLINGS if returnbody else ACCEPT_ANY}
        headers.update(index_headers(indexes))
        if vclock:
            headers["X-Riak-Vclock"] = vclock
        if if_none_match:
            headers["If-None-Match"] = "*"
        query = {"returnbody": "true"} if returnbody else None
        resp, maybe_applied = self.transport.call("PUT", path, query=query, headers=headers,
                                                  body=bytes(value))
        if resp.status in (200, 204, 201):
            if returnbody and resp.status == 200:
                return self._object_from(key, resp, btype, bucket)
            return None
        if resp.status == 300 and returnbody:
            return self._object_from(key, resp, btype, bucket)
        if resp.status in (409, 412):
            what = "exists" if if_none_match else "was changed by someone else"
            raise RiakConflict(f"riak: key {key!r} in {btype}/{bucket} {what} "
                               f"({resp.status} {resp.reason})", status=resp.status,
                               body=one_line(resp.data or b""), after_retry=maybe_applied)
        check_unknown_type(btype, resp)
        raise unexpected("PUT", path, resp)

    def delete(self, btype: str, bucket: str, key: str, vclock: str | None = None) -> None:
        """Delete ``key`` (leaves a tombstone in Riak); a missing key is fine.

        With ``vclock``, only the versions that clock has seen are deleted: a
        concurrent write survives as a sibling next to the tombstone.
        """
        path = key_path(btype, bucket, key)
        headers = {"X-Riak-Vclock": vclock} if vclock else None
        resp, _ = self.transport.call("DELETE", path, headers=headers)
        if resp.status in (200, 204):
            return
        if resp.status == 404:
            check_unknown_type(btype, resp)
            return
        raise unexpected("DELETE", path, resp)

    def _object_from(self, key: str, resp: urllib3.BaseHTTPResponse, btype: str,
                     bucket: str) -> RiakObject:
        """A RiakObject from a 200 or 300 answer (fetch or returnbody)."""
        vclock = resp.headers.get("X-Riak-Vclock")
        if resp.status == 200:
            return RiakObject(key, vclock, [sibling_from_headers(_headers_of(resp), resp.data)])
        ctype = resp.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/mixed"):
            boundary = boundary_of(ctype)
            try:
                parts = parse_multipart(resp.data, boundary or "")
            except MultipartError as exc:
                raise RiakError(f"riak: bad sibling list for key {key!r}: {exc}") from None
            siblings = [sibling_from_headers(p.headers, p.body) for p in parts]
            if not siblings:
                raise RiakError(f"riak: empty sibling list for key {key!r}")
            return RiakObject(key, vclock, siblings)
        # text/plain "Siblings:\nvtag\n...": a proxy or an old node ignored
        # our Accept; fetch the siblings one by one.
        return self._fetch_by_vtags(btype, bucket, key, vclock, resp.data)

    def _fetch_by_vtags(self, btype: str, bucket: str, key: str, vclock: str | None,
                        listing: bytes) -> RiakObject:
        lines = listing.decode("latin-1").splitlines()
        vtags = [ln.strip() for ln in lines[1:] if ln.strip()] if lines[:1] == ["Siblings:"] else []
        if not vtags:
            raise RiakError(f"riak: unreadable sibling list for key {key!r}")
        path = key_path(btype, bucket, key)
        siblings = []
        for vtag in vtags:
            resp, _ = self.transport.call("GET", path, query={"vtag": vtag})
            if resp.status != 200:
                # The object changed under us; the caller's next fetch sees it.
                raise RiakError(f"riak: siblings of key {key!r} changed while being read",
                                status=resp.status)
            siblings.append(sibling_from_headers(_headers_of(resp), resp.data))
        return RiakObject(key, vclock, siblings)
