"""Observer queries and the report they make: "tasks with status S created
at least D ago", as `riaktq report` runs them on demand (the daily
observer in daily.py runs the same queries).

The queries go through the Python API (`Queue.ids`, `Queue.tasks_of`, which
`riaktq requeue` uses too), so everything here streams: ids come from an
index page by page and are written as they arrive, task details are fetched
in chunks, so memory stays bounded however many tasks match.
"""

import csv
import json

from riaktq_cli.core import clock
from riaktq_cli.api.outcomes import chunks
from riaktq_cli.api.inputs import created_before
from riaktq_cli.core.errors import StoreUnavailable
from riaktq_cli.core.output import StreamingTable, csv_cell, display, escape, utc_time

PAGE_SIZE = 1000     # ids per index page
DETAIL_CHUNK = 500   # tasks fetched per get_tasks call


class ReportStoreError(StoreUnavailable):
    """The store failed during `report`: exit 2, as for a bad argument, so
    cron wrappers need check only one code for "the report did not run"."""

    exit_code = 2


# --- running one query -------------------------------------------------------

def query_ids(queue, status=None, age=None, *, now_us=None, limit=None):
    """Ids of tasks with `status` (any if None) created at least `age`
    seconds before `now_us`, oldest first, as a lazy iterator (at most
    `limit` if given and non-zero): `Queue.ids` with one clock reading for
    every query of a run."""
    return queue.ids(status, limit=limit or None, created_before_us=created_before(age, now_us),
                     page_size=PAGE_SIZE)


def write_ids_json(out, key, ids, **extra):
    """Write `{"key": key, "ids": [...], **extra}` as one line, streaming the
    ids (never holding the list); return how many were written."""
    out.write('{"key": ' + json.dumps(key, ensure_ascii=False) + ', "ids": [')
    count = 0
    for batch in chunks(ids, PAGE_SIZE):
        text = ", ".join(json.dumps(i, ensure_ascii=False) for i in batch)
        out.write((", " if count else "") + text)
        count += len(batch)
    out.write("]")
    for name, value in extra.items():
        out.write(f", {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}")
    out.write("}\n")
    return count


# --- report ------------------------------------------------------------------

# Table columns (human) and CSV columns (raw values, the JSON field names).
TABLE_COLUMNS = [("id", "ID"), ("status", "STATUS"), ("priority", "PRIO"), ("retry", "RETRY"),
                 ("assignee", "ASSIGNEE"), ("tags", "TAGS"), ("cat", "CREATED (UTC)"),
                 ("age", "AGE"), ("out", "OUT")]
CSV_COLUMNS = ["id", "status", "priority", "retry", "assignee", "tags", "cat", "sat", "laf", "out"]


def write_report(queue, queries, fmt, out, *, named=False, limit=None, now_us=None):
    """Run `queries` (ObserverQuery-like: key, status, age) on `queue` (a
    riaktq_cli.api.queue.Queue) and write the
    result to `out` in `fmt` (ids, json, table or csv); return the number
    of ids written.

    `named` (several queries, `--all-queries`) adds the query key to every
    line: `KEY<TAB>ID` for ids, a first column for table and csv, and one
    JSON object per line for json.
    """
    now_us = clock.now_us() if now_us is None else now_us

    def ids_of(query):
        return query_ids(queue, query.status, query.age, now_us=now_us, limit=limit)

    total = 0
    if fmt == "json":
        for query in queries:
            total += write_ids_json(out, query.key, ids_of(query))
        return total
    if fmt == "ids":
        for query in queries:
            prefix = f"{query.key}\t" if named else ""
            for batch in chunks(ids_of(query), PAGE_SIZE):
                out.write("".join(f"{prefix}{task_id}\n" for task_id in batch))
                total += len(batch)
        return total

    def rows():
        for query in queries:
            for task in queue.tasks_of(ids_of(query)):
                yield query.key, task

    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow((["key"] if named else []) + CSV_COLUMNS)
        for key, task in rows():
            view = task.to_view()
            cells = [csv_cell(view[c]) for c in CSV_COLUMNS]
            writer.writerow(([key] if named else []) + cells)
            total += 1
        return total
    if fmt == "table":
        columns = ([("key", "QUERY")] if named else []) + TABLE_COLUMNS
        table = StreamingTable([title for _, title in columns], out, page=DETAIL_CHUNK)
        for key, task in rows():
            row = _table_row(task, now_us)
            row["key"] = key
            table.add([row[k] for k, _ in columns])
            total += 1
        table.close()
        return total
    raise ValueError(f"unknown format {fmt!r}")


def _table_row(task, now_us):
    """One task as the table shows it: escaped, `out` shortened (see output.display)."""
    from riaktq_cli.core.durations import format_duration

    return {
        "id": escape(task.id), "status": task.status, "priority": task.priority, "retry": task.retry,
        "assignee": escape(task.assignee or ""), "tags": escape(",".join(task.tags)),
        "cat": utc_time(task.cat),
        "age": format_duration(max(0, now_us - task.cat) / 1e6),
        "out": display(task.out, 32),
    }
