"""Rendering rows for people (tables) and for scripts (json, csv).

Every listing goes through `render`, so `--format` means the same thing on
every command. rich and tabulate are imported only when a table is drawn.
"""

import csv
import json
import sys


def default_format(stream=None):
    """A table for a terminal, plain ids/json for pipes and cron."""
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "json"


def render(rows, columns, fmt, stream=None):
    """Write `rows` (dicts) with `columns` (list of (key, title)) as fmt."""
    stream = stream or sys.stdout
    if fmt == "json":
        stream.write(json.dumps(rows, ensure_ascii=False, indent=None) + "\n")
    elif fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([key for key, _ in columns])
        for row in rows:
            writer.writerow([_cell(row.get(key)) for key, _ in columns])
    else:
        from tabulate import tabulate
        table = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
        stream.write(tabulate(table, headers=[title for _, title in columns], tablefmt="simple") + "\n")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def short(text, width=40):
    text = str(text).replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"
