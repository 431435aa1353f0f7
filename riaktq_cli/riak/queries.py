"""Secondary-index (2i) queries: one page, or every match page by page.

Riak sorts 2i results only when a query paginates (``max_results`` or a
continuation), so ``index_all`` always pages: its order is then Riak's
(term, then key) and a continuation is stable across pages.  Terms come
back only from range queries on a ``_bin``/``_int`` field, which is why
``return_terms`` is refused anywhere else instead of answering with none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import RiakError, one_line, unexpected
from .transport import Transport, bucket_path, seg

ACCEPT_JSON = "application/json"


@dataclass
class IndexPage:
    """One page of a 2i query."""

    keys: list[str]  # always filled (also when return_terms is True)
    results: list[tuple[str, str]]  # (term, key) when return_terms is True
    continuation: str | None  # pass back for the next page; None at the end


def check_index_query(field: str, value: Any, start: Any, end: Any, return_terms: bool,
                      max_results: int | None = None) -> bool:
    """Whether the query is a range; ValueError for a query Riak would refuse or
    answer in a way the caller does not expect (the same rules on every API)."""
    is_range = start is not None or end is not None
    if is_range == (value is not None) or (is_range and (start is None or end is None)):
        raise ValueError("riak: give either value, or both start and end")
    lower = str(field).lower()
    if lower not in ("$key", "$bucket") and not lower.endswith(("_bin", "_int")):
        raise ValueError(f"riak: index field {field!r} must end in _bin or _int")
    if return_terms and (not is_range or lower.startswith("$")):
        raise ValueError("riak: return_terms needs a range query on a _bin or _int field")
    if max_results is not None and int(max_results) <= 0:
        raise ValueError("riak: max_results must be positive")
    return is_range


def _index_path(btype: str, bucket: str, field: str, value: Any, start: Any, end: Any,
                return_terms: bool) -> str:
    """The query's path; ValueError for a query Riak would refuse or answer
    in a way the caller does not expect."""
    is_range = check_index_query(field, value, start, end, return_terms)
    fieldname = str(field)
    path = f"{bucket_path(btype, bucket)}/index/{seg(fieldname)}"
    return path + (f"/{seg(start)}/{seg(end)}" if is_range else f"/{seg(value)}")


class IndexQueries:
    """index and index_all of RiakClient; relies on its ``transport``."""

    transport: Transport

    def index(self, btype: str, bucket: str, field: str, value: Any = None, *,
              start: Any = None, end: Any = None, max_results: int | None = None,
              continuation: str | None = None, return_terms: bool = False) -> IndexPage:
        """One 2i query: exact (``value``) or range (``start``..``end``, inclusive).

        Riak sorts the results only when paginating (``max_results`` or
        ``continuation`` given): ranges by term then key, exact matches by
        key.  ``return_terms`` (ranges only) fills ``results`` with
        (term, key) pairs.
        """
        check_index_query(field, value, start, end, return_terms, max_results)
        path = _index_path(btype, bucket, field, value, start, end, return_terms)
        query: dict[str, Any] = {}
        if max_results is not None:
            query["max_results"] = int(max_results)
        if continuation:
            query["continuation"] = continuation
        if return_terms:
            query["return_terms"] = "true"
        resp, _ = self.transport.call("GET", path, query=query, headers={"Accept": ACCEPT_JSON})
        if resp.status == 404:
            raise RiakError(f"riak: bucket type {btype} does not exist "
                            f"(404 on a 2i query of {btype}/{bucket})", status=404)
        if resp.status != 200:
            raise unexpected("GET", path, resp, what=f"2i query {field} on {btype}/{bucket}")
        try:
            doc = json.loads(resp.data)
        except ValueError:
            raise RiakError(f"riak: 2i query {field} on {btype}/{bucket}: "
                            f"answer is not JSON: {one_line(resp.data)}") from None
        next_page = doc.get("continuation") or None
        if "results" in doc:
            results = [(str(term), key) for item in doc["results"] for term, key in item.items()]
            return IndexPage([k for _, k in results], results if return_terms else [], next_page)
        return IndexPage(list(doc.get("keys", [])), [], next_page)

    def index_all(self, btype: str, bucket: str, field: str, value: Any = None, *,
                  start: Any = None, end: Any = None, page_size: int = 1000,
                  return_terms: bool = False) -> Iterator[Any]:
        """Every match of a 2i query, page by page, in Riak's sorted order.

        Yields keys, or (term, key) tuples with ``return_terms``.  On a
        range, one key appears once per matching term (an object with
        siblings can carry several).
        """
        if page_size <= 0:
            raise ValueError("riak: page_size must be positive")
        continuation = None
        while True:
            page = self.index(btype, bucket, field, value, start=start, end=end,
                              max_results=page_size, continuation=continuation,
                              return_terms=return_terms)
            if return_terms:
                yield from page.results
            else:
                yield from page.keys
            if not page.continuation:
                return
            if page.continuation == continuation:
                raise RiakError(f"riak: 2i query {field} on {btype}/{bucket} "
                                "repeated its continuation")
            continuation = page.continuation
