"""The daily observer (`riaktq observe`): each named query runs once per
UTC day, at the first check after the configured time of day, as in the
Erlang original, and its result is published as one JSON line
`{"key", "ids", "at"}`.

When a day is due is decided by `DailySchedule`, a pure class fed the clock
reading, so tests move through midnight without waiting for it. Which query
ran for which day is also kept in the store (record `scheduler/observer`),
so an observer restarted the same day runs nothing twice.
"""

import logging
import shutil
import tempfile
import threading

from riaktq_cli.core import clock
from riaktq_cli.api.queue import Queue
from riaktq_cli.core.errors import StoreError
from riaktq_cli.views.report import query_ids, write_ids_json

log = logging.getLogger("riaktq")

DAY_US = 86_400 * 1_000_000
MEMORY = "observer"  # record scheduler/observer: {"days": {query key: UTC day number}}


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
    `riaktq_cli.core.clock.now_us` looked up at every call).
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
