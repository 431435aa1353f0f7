"""Limits per tag, across every worker: `riaktq limit --tag db --concurrency 2`,
`riaktq limit --tag api --rate 10/m`, `riaktq limit --tag db --clear`.

A worker-side limit (Celery's `rate_limit`) multiplies with the number of
workers; here the one scheduler that holds the lease sees every assignment,
so it can keep a limit for the whole queue:

- concurrency N: never more than N tasks needing the tag assigned and
  unfinished (`nextup`) at once. The scheduler counts them in its own view:
  it reads the ids of every nextup task in each iteration anyway, and keeps
  the tags of those it assigned; tasks it does not know (after taking the
  lease, or a limit newly set) are read once, by id.
- rate R/W: never more than R assigns of such tasks in any window of W
  (sliding). The assign times are the tasks' own (their history's assign
  entry); the scheduler keeps those of the last window in memory and in the
  record `scheduler/limits_used`, written in the iteration that assigned
  them, before any worker hears of them. A scheduler that takes over reads
  that record and the history of the tasks still nextup, so a kill -9 at
  any moment leaves it knowing every assign of the window. A rate newly
  set counts the assigns from then on.

A task over a limit stays `todo` and is passed over like a task no free
instance can take (assigning.py), so others flow past it; a tag at its
limit is offered to no instance, as a paused one (pausing.py), so its
backlog costs no scan.

The limits live in the record `scheduler/limits` {"tags": {tag: {"concurrency":
N|null, "rate": [R, W seconds]|null}}, "version", "by", "since"}, written by
any operator (read back until the change shows, as pausing.py does); the
scheduler reads it at most once a second and confirms each version it
applied in `scheduler/limits_applied`.
"""

import logging
import time

from riaktq_cli.core.clock import now_us, seconds_to_us
from riaktq_cli.core.errors import BadInput, StoreError, StoreUnavailable
from riaktq_cli.core.records import RATE_UNITS, Applied, Limits, LimitsUsed, TagLimit, format_rate  # noqa: F401
from riaktq_cli.store.base import SCHEDULER

log = logging.getLogger("riaktq")

LIMITS, APPLIED, USED = "limits", "limits_applied", "limits_used"
READ_EVERY = 1.0       # seconds between the scheduler's reads of the record
WRITE_TRIES = 5
CONCURRENCY_MAX = 1_000_000
RATE_MAX = 100_000     # assigns per window: the window's times ride in one record
WINDOW_MAX = 86400.0   # a day


def parse_rate(text):
    """`10/m`, `5/2s`, `100/1h` -> (count, window seconds); BadInput otherwise."""
    from riaktq_cli.core.durations import parse_duration
    from riaktq_cli.core.errors import DurationError
    count, sep, per = str(text).partition("/")
    count, per = count.strip(), per.strip()
    if not sep or not count.isdigit() or not count.isascii() or not per:
        raise BadInput(f"bad rate {text!r}: expected COUNT/WINDOW such as 10/m, 5/2s or 1000/1h")
    try:
        seconds = RATE_UNITS[per] if per in RATE_UNITS else parse_duration(per, "rate window")
    except DurationError as exc:
        raise BadInput(str(exc)) from None
    if not 1 <= int(count) <= RATE_MAX or not 0.001 <= seconds <= WINDOW_MAX:
        raise BadInput(f"bad rate {text!r}: from 1 to {RATE_MAX} per window, a window from 1ms to 1d")
    return int(count), seconds


def read(store):
    """The limits as stored (records.Limits)."""
    return Limits.from_dict(store.get_record(SCHEDULER, LIMITS))


def change(store, tag, *, concurrency=None, rate=None, clear=False):
    """Set the concurrency and/or rate limit of `tag` (the other is kept),
    or clear both; the new Limits. Read back until the change shows:
    two operators at once leave siblings on Riak, of which readers take the
    newest."""
    from riaktq_cli.scheduler.pausing import _who
    if clear != (concurrency is None and rate is None):
        raise BadInput("give --concurrency and/or --rate, or --clear")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or not 0 <= concurrency <= CONCURRENCY_MAX):
        raise BadInput(f"bad concurrency {concurrency!r}: a whole number from 0 to {CONCURRENCY_MAX}")
    rate = parse_rate(rate) if isinstance(rate, str) else rate

    def wanted(state):
        current = state.tags.get(tag)
        if clear:
            return current is None
        return current is not None and (concurrency is None or current.concurrency == concurrency) and \
            (rate is None or current.rate == tuple(rate))
    for _ in range(WRITE_TRIES):
        state = read(store)
        if wanted(state):
            return state
        if clear:
            state.tags.pop(tag, None)
        else:
            old = state.tags.get(tag) or TagLimit(tag)
            state.tags[tag] = TagLimit(tag, old.concurrency if concurrency is None else concurrency,
                                       old.rate if rate is None else tuple(rate))
        now = now_us()
        state.version, state.by, state.since = max(now, state.version + 1), _who(), now
        store.put_record(SCHEDULER, LIMITS, state.to_dict())
    state = read(store)
    if not wanted(state):
        raise StoreUnavailable("the limits record keeps changing under concurrent writers; try again")
    return state


def view(store, now=None):
    """One dict per limited tag, as `riaktq limits`, `stats` and the
    metrics show it: the limits, tasks in flight (nextup) needing the tag,
    assigns in the current window, and whether the scheduler applied it."""
    state = read(store)
    if not state.tags:
        return []
    now = now_us() if now is None else now
    nextup = [task_id for task_id, _ in store.nextup_assignees()]
    tags_of = {t.id: t.tags for t in store.get_tasks(nextup).values()} if nextup else {}
    used = LimitsUsed.from_dict(store.get_record(SCHEDULER, USED)).tags
    applied = Applied.from_dict(store.get_record(SCHEDULER, APPLIED)).version == state.version
    rows = []
    for tag, lim in sorted(state.tags.items()):
        window = [at for at in used.get(tag, []) if lim.rate and at > now - seconds_to_us(lim.rate[1])]
        rows.append({"tag": tag, "concurrency": lim.concurrency, "rate": lim.rate_text(),
                     "rate_count": lim.rate[0] if lim.rate else None, "rate_seconds": lim.rate[1] if lim.rate else None,
                     "in_flight": sum(1 for tags in tags_of.values() if tag in tags),
                     "used": len(window) if lim.rate else None, "applied": applied})
    return rows


def describe(row):
    parts = []
    if row["concurrency"] is not None:
        parts.append(f"{row['in_flight']}/{row['concurrency']} in flight")
    if row["rate"] is not None:
        parts.append(f"{row['used']} of {row['rate']}")
    return f"{row['tag']}: " + ", ".join(parts) + ("" if row["applied"] else " (not yet applied)")


# --- the scheduler's part -----------------------------------------------------------

class TagLimits:
    """The scheduler's view: the limits (read at most once per READ_EVERY),
    the tags of every nextup task it knows, and each rate-limited tag's
    assign times in the current window."""

    def __init__(self, store, owner):
        self.store, self.owner = store, owner
        self.state = Limits()
        self._read_at = None
        self._confirmed = None
        self._tags_of = {}        # nextup task id -> its tags
        self._assigns = None      # tag -> [assign µs], the window; None until read after taking the lease
        self._unsaved = False     # the window's last write failed
        self._budget = {}         # this iteration: limited tag -> assigns it may still make

    def restart(self):
        """This process (again) holds the lease: rebuild the view from the store."""
        self._tags_of, self._assigns, self._read_at, self._unsaved = {}, None, None, False

    def refresh(self, nextup_ids, now):
        """Before an assignment: the record (at most once a second), the
        tasks in flight (`nextup_ids`: every nextup task), the window; and
        this iteration's budget per limited tag."""
        clock = time.monotonic()
        if self._read_at is None or clock - self._read_at >= READ_EVERY:
            state = read(self.store)
            if state.version != self.state.version:
                log.info("tag limits: %s", ", ".join(f"{t} {_short(lim)}" for t, lim in sorted(state.tags.items()))
                         or "none")
            self.state, self._read_at = state, clock
        nextup_ids = set(nextup_ids)
        self._tags_of = {i: tags for i, tags in self._tags_of.items() if i in nextup_ids}
        self._budget = {}
        if not self.state.tags:
            return
        unknown = [i for i in nextup_ids if i not in self._tags_of]
        found = self.store.get_tasks(unknown) if unknown else {}
        for task_id in unknown:
            task = found.get(task_id)
            self._tags_of[task_id] = task.tags if task is not None else ()
        if self._assigns is None:
            self._assigns = LimitsUsed.from_dict(self.store.get_record(SCHEDULER, USED)).tags
            for task in found.values():    # assigns the last holder may not have written down
                for entry in task.history:
                    if entry[1] == "assign" and task.tags:
                        for tag in task.tags:
                            if entry[0] not in self._assigns.setdefault(tag, []):
                                self._assigns[tag].append(entry[0])
        rated = {t for t, lim in self.state.tags.items() if lim.rate}
        self._assigns = {t: times for t, times in self._assigns.items() if t in rated}
        for tag, lim in self.state.tags.items():
            left = []
            if lim.concurrency is not None:
                left.append(lim.concurrency - sum(1 for tags in self._tags_of.values() if tag in tags))
            if lim.rate is not None:
                start = now - seconds_to_us(lim.rate[1])
                self._assigns[tag] = [at for at in self._assigns.get(tag, []) if at > start]
                left.append(lim.rate[0] - len(self._assigns[tag]))
            self._budget[tag] = max(0, min(left))

    def offered(self, tags):
        """The tags an instance is offered to the assignment with: none at its limit."""
        return [t for t in tags if self._budget.get(t, 1) > 0]

    def admit(self, task):
        """Whether `task` may be assigned in this iteration; if so it takes its share of each budget."""
        limited = [t for t in task.tags if t in self._budget]
        if any(self._budget[t] <= 0 for t in limited):
            return False
        for tag in limited:
            self._budget[tag] -= 1
        return True

    def servable(self, tagset):
        """Whether a task needing `tagset` could be admitted now."""
        return all(self._budget.get(t, 1) > 0 for t in tagset)

    def assigned(self, tasks, check_lease):
        """After the assign writes: count them in flight and in the window;
        write the window down before any inbox names them."""
        rated = False
        for task in tasks:
            self._tags_of[task.id] = task.tags
            at = task.history[-1][0] if task.history else now_us()
            for tag in task.tags:
                lim = self.state.tags.get(tag)
                if lim is not None and lim.rate is not None and self._assigns is not None:
                    self._assigns.setdefault(tag, []).append(at)
                    rated = True
        if (rated or self._unsaved) and self._assigns is not None:
            try:
                check_lease()
                self.store.put_record(SCHEDULER, USED, LimitsUsed(self._assigns, now_us()).to_dict())
                self._unsaved = False
            except StoreError as exc:
                # Tried again next iteration; a kill before then is covered by
                # the history of the tasks still nextup.
                log.warning("tag limits: could not write the rate window (%s)", exc)
                self._unsaved = True

    def confirm(self):
        """After an iteration that applied the limits: say so, once per version."""
        if not self.state.version or self._confirmed == self.state.version:
            return
        self.store.put_record(SCHEDULER, APPLIED, Applied(self.state.version, self.owner, now_us()).to_dict())
        self._confirmed = self.state.version


def _short(lim):
    parts = ([f"concurrency {lim.concurrency}"] if lim.concurrency is not None else []) + \
        ([f"rate {lim.rate_text()}"] if lim.rate else [])
    return " ".join(parts)
