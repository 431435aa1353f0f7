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
import time

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


def utc_time(us, micro=False):
    """µs since the epoch as `YYYY-MM-DD HH:MM:SS` UTC (`micro`: with
    `.ffffff UTC`), the one time format of every table."""
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(us / 1e6))
    return text + f".{us % 1_000_000:06d} UTC" if micro else text


def csv_cell(value):
    """A JSON view's value as one CSV cell: tags joined by commas, a
    base64 dict as its JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


class StreamingTable:
    """A tabulate "simple" table written page by page.

    The first page (up to `page` rows) is laid out by tabulate; later pages
    reuse its column widths, so a table of any length is written with only
    one page in memory and its columns still line up (a longer cell just
    pushes its row to the right).
    """

    def __init__(self, headers, out, page=500):
        self.headers = headers
        self.out = out
        self.page = page
        self.rows = []
        self.widths = None

    def add(self, row):
        self.rows.append(["" if v is None else str(v) for v in row])
        if len(self.rows) >= self.page:
            self._flush()

    def close(self):
        self._flush()

    def _flush(self):
        if not self.rows:
            return
        if self.widths is None:
            from tabulate import tabulate
            text = tabulate(self.rows, headers=self.headers, tablefmt="simple",
                            disable_numparse=True)
            rule = text.split("\n")[1]
            self.widths = [len(dashes) for dashes in rule.split("  ")]
            self.out.write(text + "\n")
        else:
            for row in self.rows:
                cells = [cell.ljust(width) for cell, width in zip(row, self.widths)]
                self.out.write("  ".join(cells).rstrip() + "\n")
        self.rows = []
