"""Observer queries: "tasks with status S created at least D ago", run on
demand (`riaktq report`) or once a day (`riaktq observe`).

The queries go through the Python API (`Queue.ids`, `Queue.tasks_of`, which
`riaktq requeue` uses too), so everything here streams: ids come from an
index page by page and are written as they arrive, task details are fetched
in chunks, so memory stays bounded however many tasks match.

The daily run follows the Erlang original's observer: each named query runs
once per UTC day, at the first check after the configured time of day, and
its result is published as one JSON line `{"key", "ids", "at"}`. When a day
is due is decided by `DailySchedule`, a pure class fed the clock reading,
so tests move through midnight without waiting for it. Which query ran for
which day is also kept in the store (record `scheduler/observer`), so an
observer restarted the same day runs nothing twice.
"""

import csv
import json
import logging
import shutil
import tempfile
import threading
import time

from riaktq_cli import clock
from riaktq_cli.api import Queue, chunks
from riaktq_cli.api_input import created_before
from riaktq_cli.errors import StoreError, StoreUnavailable

log = logging.getLogger("riaktq")

PAGE_SIZE = 1000     # ids per index page
DETAIL_CHUNK = 500   # tasks fetched per get_tasks call
DAY_US = 86_400 * 1_000_000


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
    riaktq_cli.api.Queue) and write the
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
            cells = [_csv_cell(view[c]) for c in CSV_COLUMNS]
            writer.writerow(([key] if named else []) + cells)
            total += 1
        return total
    if fmt == "table":
        columns = ([("key", "QUERY")] if named else []) + TABLE_COLUMNS
        table = StreamingTable([title for _, title in columns], out)
        for key, task in rows():
            row = _table_row(task, now_us)
            row["key"] = key
            table.add([row[k] for k, _ in columns])
            total += 1
        table.close()
        return total
    raise ValueError(f"unknown format {fmt!r}")


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _table_row(task, now_us):
    """One task as the table shows it: escaped, `out` shortened (see output.display)."""
    from riaktq_cli.durations import format_duration
    from riaktq_cli.output import display, escape

    return {
        "id": escape(task.id), "status": task.status, "priority": task.priority, "retry": task.retry,
        "assignee": escape(task.assignee or ""), "tags": escape(",".join(task.tags)),
        "cat": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(task.cat / 1e6)),
        "age": format_duration(max(0, now_us - task.cat) / 1e6),
        "out": display(task.out, 32),
    }


class StreamingTable:
    """A tabulate "simple" table written page by page.

    The first page (up to `page` rows) is laid out by tabulate; later pages
    reuse its column widths, so a table of any length is written with only
    one page in memory and its columns still line up (a longer cell just
    pushes its row to the right).
    """

    def __init__(self, headers, out, page=DETAIL_CHUNK):
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


# --- the daily observer --------------------------------------------------------

def parse_time_of_day(text):
    """"HH:MM:SS" → µs after midnight UTC (the value is checked by config)."""
    hh, mm, ss = (int(part) for part in text.split(":"))
    return ((hh * 60 + mm) * 60 + ss) * 1_000_000


class DailySchedule:
    """Which queries are due: each once per UTC day, at or after a time.

    Pure and clock-free: callers pass the time (µs since epoch). A query
    whose run failed is simply not marked, so it is due again at the next
    check; after midnight every query is due again once the day's time has
    come.
    """

    def __init__(self, time_of_day, keys, last_day=None):
        self.offset_us = parse_time_of_day(time_of_day)
        self.keys = list(keys)
        self.last_day = dict(last_day or {})  # key -> the UTC day number it last ran for

    def due(self, now_us):
        """(day, [keys due now]); day is the UTC day number of `now_us`."""
        day, into_day = divmod(now_us, DAY_US)
        if into_day < self.offset_us:
            return day, []
        return day, [key for key in self.keys if self.last_day.get(key) != day]

    def mark(self, key, day):
        """`key` ran (successfully) for `day`, the day `due` returned."""
        self.last_day[key] = day


MEMORY = "observer"  # record scheduler/observer: {"days": {query key: UTC day number}}


def load_days(store):
    """{query key: the UTC day it last ran for}, as the store remembers it."""
    from riaktq_cli.store.base import SCHEDULER
    doc = store.get_record(SCHEDULER, MEMORY) or {}
    days = doc.get("days") if isinstance(doc, dict) else None
    return {k: v for k, v in (days or {}).items() if isinstance(v, int)}


def save_days(store, days):
    from riaktq_cli.store.base import SCHEDULER
    store.put_record(SCHEDULER, MEMORY, {"days": days})


class Observer:
    """Runs the configured queries once a day and writes the non-empty
    results as JSON lines `{"key": ..., "ids": [...], "at": µs}` to `out`.

    `clock` returns µs since the epoch (patchable: defaults to
    `riaktq_cli.clock.now_us` looked up at every call).
    """

    def __init__(self, store, queries, time_of_day, out, clock_fn=None):
        self.store = store
        self.queue = Queue(store)  # the query side, as `riaktq report` runs it
        self.queries = list(queries)
        self.schedule = DailySchedule(time_of_day, [q.key for q in self.queries])
        self.out = out
        self.clock = clock_fn or (lambda: clock.now_us())
        self._remembered = False

    def _remember(self):
        """Load what ran on which day, once; False while the store cannot
        say (then nothing runs: better late than twice)."""
        if not self._remembered:
            try:
                self.schedule.last_day.update(load_days(self.store))
            except StoreError as exc:
                log.warning("cannot read which queries already ran today, retrying at the next check: %s", exc)
                return False
            self._remembered = True
        return True

    def check(self):
        """Run the queries due now. Returns [(key, number of ids)] of the
        queries that ran; a failing query is logged and left due."""
        if not self._remember():
            return []
        now = self.clock()
        day, due = self.schedule.due(now)
        ran = []
        for query in self.queries:
            if query.key not in due:
                continue
            try:
                count = self._run(query, now)
            except Exception as exc:  # never kill the daemon: retry at the next check
                log.warning("query %s failed, retrying at the next check: %s: %s",
                            query.key, type(exc).__name__, exc)
                continue
            self.schedule.mark(query.key, day)
            try:
                save_days(self.store, self.schedule.last_day)
            except StoreError as exc:
                log.warning("query %s ran, but the store could not record it: %s", query.key, exc)
            log.info("query %s: %d task(s)%s", query.key, count, "" if count else ", nothing written")
            ran.append((query.key, count))
        return ran

    def _run(self, query, now):
        # Spool the line (memory up to 1 MB, then a temporary file): memory
        # stays bounded, and a query failing halfway writes nothing.
        with tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8") as spool:
            count = write_ids_json(spool, query.key, query_ids(self.queue, query.status, query.age,
                                                               now_us=now), at=now)
            if count:
                spool.seek(0)
                shutil.copyfileobj(spool, self.out)
                self.out.flush()
        return count

    def run(self, interval, stop=None):
        """Check every `interval` seconds until `stop` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.check()
            stop.wait(interval)
