"""A small, byte-exact parser for the multipart/mixed bodies Riak sends.

Riak answers a fetch of an object with siblings (HTTP 300) with one part per
sibling when the client accepts ``multipart/mixed``.  Each part is a block of
headers, a blank line and the sibling's value as raw bytes -- which may be
binary and may end in CR or LF characters that belong to the value.

The standard library's ``email`` parser is not used on purpose: it works on
text, normalises line endings, and treats the CRLF before a delimiter loosely,
so a binary value ending in ``\\r\\n`` (or a JSON value with a trailing
newline) would not survive byte for byte.  RFC 2046 is simple enough to do
exactly: the delimiter is ``CRLF--boundary``, the CRLF belongs to the
delimiter (not to the preceding part), and ``--boundary--`` closes the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Part", "MultipartError", "parse_multipart", "boundary_of"]


class MultipartError(ValueError):
    """The body is not the multipart/mixed document its headers announce."""


@dataclass
class Part:
    """One body part: headers (names lower-cased, every line kept) and bytes."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (case-insensitive), or `default`."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name`, in the order the lines came."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a Content-Type value, unquoted, or None.

    Riak writes ``multipart/mixed; boundary=B`` (2i streaming writes
    ``multipart/mixed;boundary=B``); quoted boundaries are legal HTTP, so both
    forms are accepted.
    """
    for param in content_type.split(";")[1:]:
        name, sep, value = param.strip().partition("=")
        if sep and name.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def _parse_headers(block: bytes, newline: bytes) -> list[tuple[str, str]]:
    """Header lines -> [(lower-cased name, value)], unfolding continuations.

    Header bytes are decoded as Latin-1, the way http.client does for the
    top-level response, so every byte maps to one character and nothing is
    lost; callers re-encode when they need the raw bytes back.
    """
    headers: list[tuple[str, str]] = []
    if not block:
        return headers
    for raw in block.split(newline):
        if not raw:
            continue
        line = raw.decode("latin-1")
        if line[0] in " \t" and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed part header line {line[:60]!r}")
        headers.append((name.strip().lower(), value.strip()))
    return headers


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart/mixed `body` into its parts, keeping values exact.

    Accepts the CRLF form Riak uses (``\\r\\n--B\\r\\n`` ... ``\\r\\n--B--``), a
    first delimiter without the leading CRLF, and -- for very old Riak
    versions that wrote bare LF -- the LF form when no CRLF delimiter occurs.
    Raises MultipartError when the closing delimiter is missing (a truncated
    body must never be taken for a complete list of siblings).
    """
    if not boundary:
        raise MultipartError("multipart body without a boundary")
    dash = b"--" + boundary.encode("latin-1")
    newline = b"\r\n"
    if (newline + dash) not in body and (b"\n" + dash) in body:
        newline = b"\n"
    delimiter = newline + dash
    # The first delimiter may open the body without a preceding line break.
    data = newline + body if body.startswith(dash) else body
    chunks = data.split(delimiter)
    if len(chunks) < 2:
        raise MultipartError("no multipart delimiter found in body")
    parts: list[Part] = []
    closed = False
    for chunk in chunks[1:]:  # chunks[0] is the preamble
        if chunk.startswith(b"--"):
            closed = True
            break
        # After the boundary: optional transport padding, then a line break.
        end_of_line = chunk.find(newline)
        if end_of_line < 0 or chunk[:end_of_line].strip(b" \t"):
            raise MultipartError("malformed multipart delimiter line")
        rest = chunk[end_of_line + len(newline):]
        if rest.startswith(newline):  # a part with no headers at all
            head, content = b"", rest[len(newline):]
        else:
            head, sep, content = rest.partition(newline + newline)
            if not sep:
                raise MultipartError("multipart part without a blank line after its headers")
        parts.append(Part(_parse_headers(head, newline), content))
    if not closed:
        raise MultipartError("multipart body is truncated (no closing delimiter)")
    return parts
