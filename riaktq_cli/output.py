"""Rendering rows for people (tables) and for scripts (json, csv).

Every listing goes through `render`, so `--format` means the same thing on
every command. rich and tabulate are imported only when a table is drawn.

Task input and output are whatever a user or a handler put there, so every
view meant for people shows them through `escape`/`display`: a control
character written to a terminal can retitle the window, write the clipboard
(OSC 52) or overwrite the line (CR), and a megabyte of base64 buries the
table. Machine formats (json, csv, ids) keep the exact values.
"""

import json
import sys

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch):
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x20 or 0x7F <= code < 0xA0:
        return f"\\x{code:02x}"
    if not ch.isprintable():  # format characters: bidi overrides, zero-width joiners...
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def escape(text, keep_newlines=False):
    """`text` with every character a terminal would act on written as an
    escape (`\\x1b`, `\\r`, `\\u202e`: C0 and C1 controls, DEL, and the
    format characters such as bidi overrides that reorder what is shown).
    `keep_newlines` leaves `\\n` and `\\t` alone, for output printed on
    its own lines (`open --wait` on a terminal)."""
    text = str(text)
    if text.isprintable():
        return text  # the common case, at C speed
    out = []
    for ch in text:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def display(value, width=40):
    """A task's `in`/`out` as its JSON view holds it (text, {"base64": ...}
    or None), made safe and short for a person: control characters escaped,
    binary shown as its size, long text cut with its size at the end."""
    if value is None:
        return ""
    if isinstance(value, dict) and "base64" in value:
        return f"<{_b64_size(value['base64'])} bytes, base64>"
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes, base64>"
    text = escape(value)
    if len(text) <= width:
        return text
    size = len(value.encode("utf-8", "surrogateescape"))
    suffix = f"… <{size} bytes>"
    return text[: max(1, width - len(suffix))] + suffix


def _b64_size(text):
    n = len(text)
    return max(0, n * 3 // 4 - text[-2:].count("="))


def render(rows, columns, fmt, stream=None):
    """Write `rows` (dicts) with `columns` (list of (key, title)) as fmt."""
    stream = stream or sys.stdout
    if fmt == "json":
        stream.write(json.dumps(rows, ensure_ascii=False, indent=None) + "\n")
    elif fmt == "csv":
        import csv
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([key for key, _ in columns])
        for row in rows:
            writer.writerow([_cell(row.get(key)) for key, _ in columns])
    else:
        from tabulate import tabulate
        table = [[_table_cell(row.get(key)) for key, _ in columns] for row in rows]
        stream.write(tabulate(table, headers=[title for _, title in columns], tablefmt="simple",
                              disable_numparse=True) + "\n")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _table_cell(value):
    """A cell for people: never a raw control character."""
    value = _cell(value)
    return escape(value) if isinstance(value, str) else value
