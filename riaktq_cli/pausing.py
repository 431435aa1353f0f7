"""Pausing assignment: `riaktq pause [--tag T]` and `riaktq resume [--tag T]`.

The state lives in the store, record `scheduler/pause`:
{"all": bool, "tags": [tag...], "since": µs, "by": "user@host", "version": µs},
so it outlasts any scheduler process: one that restarts or takes over reads
it before its first assignment. Paused, the scheduler assigns nothing (all)
or nothing that needs a paused tag: an instance is offered to the
assignment as if it lacked the paused tags, so untagged tasks and other
tags flow on, and a paused backlog costs no scan (assigning.py skips tag
sets no free instance can serve). Commit and rollback go on: work in flight
finishes.

The scheduler reads the record at most once per READ_EVERY: one small GET
a second on Riak, however fast it iterates. After an iteration that applied
a state it has not confirmed yet, it writes `scheduler/pause_applied`
{"version", "owner", "at"} -- once per change and per scheduler, never per
iteration -- so `stats` can say whether the running scheduler has applied
the pause, and `riaktq pause` waits for it (`await_applied`): when it
returns, nothing opened afterwards is assigned -- or it says why it could
not tell (no scheduler running; the running one did not confirm in time).

Several operators may pause at once. On Riak their writes can leave
siblings, of which readers take the newest; so `change` reads back what it
wrote and tries again (with the vector clock that saw both) until its own
change shows.
"""

import logging
import os
import socket
import time

from riaktq_cli.clock import now_us
from riaktq_cli.errors import StoreUnavailable
from riaktq_cli.store.base import SCHEDULER

log = logging.getLogger("riaktq")

PAUSE, APPLIED = "pause", "pause_applied"
READ_EVERY = 1.0   # seconds between the scheduler's reads of the record
WRITE_TRIES = 5
APPLY_WAIT = 10.0  # seconds `pause` waits for the running scheduler to confirm (default)
APPLY_POLL = 0.05  # seconds between reads of the confirmation while waiting


def read(store):
    """The pause state: {"all", "tags", "since", "by", "version"}."""
    doc = store.get_record(SCHEDULER, PAUSE) or {}
    tags = doc.get("tags") if isinstance(doc.get("tags"), list) else []
    return {"all": doc.get("all") is True, "tags": sorted({t for t in tags if isinstance(t, str)}),
            "since": doc.get("since"), "by": doc.get("by"), "version": doc.get("version") or 0}


def is_paused(state):
    return state["all"] or bool(state["tags"])


def change(store, pause, tag=None):
    """Pause (or resume) everything, or the tasks needing `tag`; the new state.

    `resume` without a tag resumes everything, paused tags included."""
    def wanted(state):
        if tag is None:
            return state["all"] if pause else not is_paused(state)
        return (tag in state["tags"]) == pause
    for _ in range(WRITE_TRIES):
        state = read(store)
        if wanted(state):
            return state
        if tag is None:
            state["all"] = pause
            if not pause:
                state["tags"] = []
        else:
            state["tags"] = sorted(set(state["tags"]) | {tag}) if pause else \
                [t for t in state["tags"] if t != tag]
        now = now_us()
        if is_paused(state):
            state["since"] = state["since"] or now
            state["by"] = _who()
        else:
            state["since"] = state["by"] = None
        state["version"] = max(now, state["version"] + 1)
        store.put_record(SCHEDULER, PAUSE, state)
    state = read(store)
    if not wanted(state):
        raise StoreUnavailable("the pause record keeps changing under concurrent writers; try again")
    return state


def view(store):
    """The state as `stats` and `instances` show it, with `applied`: whether
    the running scheduler has applied this version; None if nothing is paused."""
    state = read(store)
    if not is_paused(state):
        return None
    applied = store.get_record(SCHEDULER, APPLIED) or {}
    state["applied"] = applied.get("version") == state["version"]
    state["applied_by"] = applied.get("owner")
    return state


def await_applied(store, state, timeout=APPLY_WAIT):
    """Wait until the running scheduler confirms it applied `state` (or a
    later version), at most `timeout` seconds; `state` with "applied",
    "applied_by" and "scheduler" (the lease holder's name, None when no
    scheduler holds the lease).

    A scheduler confirms a version after the iteration whose assignment
    step used it, and every later step uses that version or a newer one:
    once confirmed, nothing opened afterwards is assigned against the
    pause. With no scheduler running there is nothing to wait for: the
    next one reads the record before its first assignment."""
    from riaktq_cli.lease import winner
    state = dict(state)
    deadline = time.monotonic() + timeout
    while True:
        applied = store.get_record(SCHEDULER, APPLIED) or {}
        version = applied.get("version")
        if isinstance(version, int) and version >= state["version"]:
            state.update(applied=True, applied_by=applied.get("owner"), scheduler=applied.get("owner"))
            return state
        holder = winner(store.read_lease(), now_us())
        state.update(applied=False, applied_by=None, scheduler=holder and holder.get("owner"))
        if holder is None or time.monotonic() >= deadline:
            return state
        time.sleep(APPLY_POLL)


def describe(state):
    """One line: what is paused, since when and by whom."""
    what = "all tasks" if state["all"] else "tasks needing " + ", ".join(state["tags"])
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state["since"] / 1e6)) if state["since"] else "?"
    applied = "" if "applied" not in state else \
        ("; applied by the scheduler" if state["applied"] else "; not yet applied by a scheduler")
    return f"assignment paused: {what} (since {since}, by {state['by'] or '?'}{applied})"


def _who():
    import getpass
    try:
        user = getpass.getuser()
    except (OSError, KeyError):   # no login name, no passwd entry (some containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class Pauses:
    """The scheduler's view of the pause: read at most once per READ_EVERY,
    confirmed once per version it applied."""

    def __init__(self, store, owner):
        self.store, self.owner = store, owner
        self.state = None
        self._read_at = None
        self._confirmed = None

    def current(self):
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= READ_EVERY:
            state = read(self.store)
            before = self.state or {"version": 0}
            if state["version"] < before["version"]:
                # Versions only grow and the record is never deleted: an older
                # one, or none, is a read that missed (a Riak node catching
                # up), no resume. Keep what was read before.
                state = before
            if state["version"] != before["version"]:
                log.info("%s", describe(state) if is_paused(state) else "assignment resumed")
            self.state, self._read_at = state, now
        return self.state

    def offered(self, tags):
        """The tags an instance is offered to the assignment with."""
        paused = set(self.state["tags"]) if self.state else set()
        return [t for t in tags if t not in paused]

    def confirm(self):
        """After an iteration that applied `state`: say so, once per version."""
        if self.state is None or self._confirmed == self.state["version"] or not self.state["version"]:
            return
        self.store.put_record(SCHEDULER, APPLIED, {"version": self.state["version"], "owner": self.owner,
                                                   "at": now_us()})
        self._confirmed = self.state["version"]
