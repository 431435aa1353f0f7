"""HTTP details as Riak's webmachine has them: halts with their bodies,
path and header decoding, content negotiation, continuations."""

from __future__ import annotations

import base64
import json
import re
from http import HTTPStatus
from urllib.parse import unquote_to_bytes


_QUORUM_PARAMS = ("r", "w", "dw", "rw", "pr", "pw", "node_confirms")
_BOOL_PARAMS = ("basic_quorum", "notfound_ok")
_BOOL_PROPS = ("allow_mult", "last_write_wins", "dvv_enabled", "basic_quorum", "notfound_ok",
               "write_once")
_WM_404 = (b"<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD><BODY><H1>Not Found</H1>"
           b"The requested document was not found on this server.<P><HR>"
           b"<ADDRESS>mochiweb+webmachine web server</ADDRESS></BODY></HTML>")
_WM_401 = (b"<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>"
           b"<p><hr><address>mochiweb+webmachine web server</address></body></html>")
_LINK_WALK = (b"Invalid link walk query submitted. Valid link walk query format is: "
              b"/riak/some_bucket/some_key/<bucket>,<riaktag>,0|1/...")
_HTTPS_ONLY = b"Security is enabled and Riak does not accept credentials over HTTP. Try HTTPS instead."
_CONT_MAGIC = b"\x83h\x02"  # continuations start like Erlang's term_to_binary ("g2gC...")


def webmachine_error_body(status: int, reason: str | None = None) -> bytes:
    """The page webmachine renders for an error its resource gave no body
    (text/html): its own 404 and 500 pages, a generic one for the rest."""
    if status == 404:
        return _WM_404
    phrase = HTTPStatus(status).phrase
    if status == 500:
        return (f"<html><head><title>500 Internal Server Error</title></head><body>"
                f"<h1>Internal Server Error</h1>The server encountered an error while processing "
                f"this request:<br><pre>{reason or 'undefined'}</pre><P><HR><ADDRESS>mochiweb+"
                f"webmachine web server</ADDRESS></body></html>").encode()
    return (f"<html><head><title>{status} {phrase}</title></head><body><h1>{phrase}</h1><p><hr>"
            f"<address>mochiweb+webmachine web server</address></body></html>").encode()


class _Halt(Exception):
    """Stop handling a request and answer with this status/body."""

    def __init__(self, status: int, body: bytes | str = b"", headers=(), ctype="text/plain"):
        super().__init__(status)
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = list(headers)
        self.ctype = ctype


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


def _quote_plus(text: str) -> str:
    from urllib.parse import quote_plus
    return quote_plus(text.encode("utf-8", "surrogateescape"))


def _encode_continuation(item: list) -> str:
    return base64.b64encode(_CONT_MAGIC + json.dumps(item).encode()).decode()


_UNDECODABLE = object()  # not even a term: Riak's binary_to_term crashes


def _decode_continuation(text: str):
    """The continuation's item; None if it is a term but not one of ours;
    _UNDECODABLE if it is not a term at all."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return _UNDECODABLE
    if not raw.startswith(_CONT_MAGIC):
        return _UNDECODABLE
    try:
        item = json.loads(raw[len(_CONT_MAGIC):])
    except ValueError:
        return None
    if isinstance(item, list) and ((item[:1] == ["r"] and len(item) == 3)
                                   or (item[:1] == ["k"] and len(item) == 2)):
        return item
    return None
