"""Opening notes: how a batch open saves the scheduler one GET per task.

To assign a task the scheduler needs its value and vector clock, and the
todo index gives only keys: one GET per task, a quarter of a task's Riak
requests. The process that opens a batch has both in hand (its create PUT
returns the clock), so it also writes one note per batch,
`<prefix>_opened/<random>` = {"tasks": [[record, vclock], ...]}, found
through `written_bin` (`opened:<µs>`) like every record. The scheduler
reads the notes (one GET per batch) when a page of the todo index holds
keys it does not know, and assigns from a note's copy instead of reading
the task.

A note is a hint, never the truth: its copy is used only while the todo
index still lists the task under the very term that copy gives (same
priority, creation time, id and tags: a restarted or re-opened task has
another term). A copy that is stale all the same (a task deleted, or run
and requeued, while the note lived) makes the assign write a sibling, which
the store sees in the write's answer and repairs (store/riak.py
`settle` below): a note can cost a wasted write, never a lost change.

Cost: one PUT per batch of at least NOTE_MIN tasks, one GET by the
scheduler, one DELETE once every task in it has been handed out (or
NOTE_MAX_AGE has passed: a note whose tasks were removed before they ran
would never empty). Tasks over NOTE_TASK_MAX bytes are left out and notes
are cut at NOTE_BYTES, so a note stays a small object; the scheduler holds
at most CACHE_TASKS noted tasks in memory and reads more as it needs them.
"""

import json
import logging
import secrets
import threading
import time

from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import StoreError
from riaktq_cli.store.riak_terms import HIGH, JSON, decode_siblings, number_term, task_indexes
from riaktq_cli.core.task import Task, merge

log = logging.getLogger("riaktq")

NOTES = "opened"
NOTE_MIN = 8                    # smaller batches: the note would cost more than it saves
NOTE_TASK_MAX = 8 * 1024        # bytes of one task record in a note
NOTE_BYTES = 256 * 1024         # bytes of one note
NOTE_MAX_AGE = 3600 * 10**6     # µs
CACHE_TASKS = 20_000
NOTE_TASKS_TYPICAL = 1_000      # a note of small tasks holds up to about this many
RECHECK_MAX = 1.0               # s between note queries that keep finding nothing new


def note_chunks(created):
    """[(task, vclock)] -> lists of [record, vclock] for notes: small tasks
    only, each note under NOTE_BYTES, none under NOTE_MIN tasks."""
    chunks, chunk, size = [], [], 0
    for task, vclock in created:
        item = [task.to_record(), vclock]
        n = len(json.dumps(item, separators=(",", ":")))
        if n > NOTE_TASK_MAX or not vclock:
            continue
        if size + n > NOTE_BYTES and chunk:
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(item)
        size += n
    chunks.append(chunk)
    return [c for c in chunks if len(c) >= NOTE_MIN]


def todo_terms(task):
    """The todo index terms this version of the task is listed under."""
    indexes = task_indexes(task)
    return {indexes.get("todo_bin"), indexes.get("todotag_bin")} - {None}


def settle(store, new, stored):
    """The write of `new` with a clock read earlier (or a note's) left
    siblings: another writer got there first. Resolve them with the clock
    that saw them all; True if `new` is what stays (the merge by `rev`
    picks it), False if the task was deleted or another version is ahead
    -- the write then counts as not made, and the task is not handed out."""
    if any(s.deleted for s in stored.siblings):
        store.riak.call(store.client.delete, store.btype, store.bucket("task"), new.id, vclock=stored.vclock)
        return False
    copies = []
    for doc in decode_siblings(stored.live_siblings, f"task {new.id!r}"):
        try:
            copies.append(Task.from_record(doc))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass    # not a riaktq task: the next read of the task says so
    winner = merge(copies)
    store._store_task(winner, stored.vclock)
    return winner.to_record() == new.to_record()


class OpeningNotes:
    """The scheduler's side: noted copies by task id, read on demand."""

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._copies = {}        # task id -> (task, vclock, note name)
        self._left = {}          # note name -> task ids not handed out yet
        self._seen = set()       # notes read (or deleted) by this process
        self._next_check = 0.0
        self._backoff = 0.0

    # --- the opener's side -------------------------------------------------------
    @staticmethod
    def write(store, created):
        """One note per chunk of a batch just created; a failure costs only
        the GETs the note would have saved."""
        for chunk in note_chunks(created):
            written = now_us()
            body = json.dumps({"tasks": chunk, "_written": written}, separators=(",", ":")).encode()
            try:
                store.riak.call(store.client.store, store.btype, store.bucket(NOTES), secrets.token_hex(8), body,
                             JSON, indexes={"written_bin": f"{NOTES}:{number_term(written)}"})
            except StoreError as exc:
                log.debug("opening note not written (the scheduler will read the tasks): %s", exc)

    # --- the scheduler's side ----------------------------------------------------
    def lookup(self, pairs):
        """{key: (task, vclock)} for the (term, key) pairs of a todo page
        that a note holds under that same term; reads notes first when
        several keys are unknown."""
        unknown = [k for _, k in pairs if k not in self._copies]
        if len(unknown) >= 2 and time.monotonic() >= self._next_check:
            self._load()
        found = {}
        with self._lock:
            for term, key in pairs:
                copy = self._copies.get(key)
                if copy is None:
                    continue
                if term in todo_terms(copy[0]):
                    found[key] = copy[:2]
        return found

    def used(self, keys):
        """The tasks of `keys` were read or handed out: their copies go, and
        a note with nothing left is deleted."""
        empty = []
        with self._lock:
            for key in keys:
                copy = self._copies.pop(key, None)
                if copy is None:
                    continue
                left = self._left.get(copy[2])
                if left is not None:
                    left.discard(key)
                    if not left:
                        del self._left[copy[2]]
                        empty.append(copy[2])
        self._delete(empty)

    def _load(self):
        try:
            listed = {}
            for term, name in self.store.riak.index_iter(self.store.btype, self.store.bucket(NOTES), "written_bin",
                                                     start=f"{NOTES}:{number_term(0)}", end=f"{NOTES}:{HIGH}",
                                                     page_size=1000, return_terms=True):
                listed.setdefault(name, int(term.rsplit(":", 1)[1]))
            old = [n for n, w in listed.items() if w < now_us() - NOTE_MAX_AGE]
            self._delete(old)
            with self._lock:
                self._seen &= set(listed)    # deleted notes leave the listing: forget them
            fresh = sorted((w, n) for n, w in listed.items() if n not in self._seen and n not in old)
            # oldest first (the head of the queue, priorities aside), as many
            # as leave the copies in memory under CACHE_TASKS
            names = [n for _, n in fresh][:max(0, CACHE_TASKS - len(self._copies)) // NOTE_TASKS_TYPICAL]
            for name, obj in zip(names, self.store.riak.map(self._fetch, names)):
                self._take(name, obj)
        except StoreError as exc:
            log.debug("opening notes not read (reading the tasks instead): %s", exc)
            names = []
        # Nothing new: look again later, each time a little later, so a
        # stream of single opens does not cost a query per iteration.
        self._backoff = 0.0 if names else min(RECHECK_MAX, max(0.05, 2 * self._backoff))
        self._next_check = time.monotonic() + self._backoff

    def _fetch(self, name):
        return self.store.riak.call(self.store.client.fetch, self.store.btype, self.store.bucket(NOTES), name)

    def _take(self, name, obj):
        self._seen.add(name)
        docs = decode_siblings(obj.live_siblings, f"opening note {name!r}") if obj is not None else []
        ids = set()
        with self._lock:
            for doc in docs:
                for record, vclock in (doc.get("tasks", []) if isinstance(doc, dict) else []):
                    try:
                        task = Task.from_record(record)
                    except (KeyError, TypeError, ValueError, AttributeError):
                        continue
                    self._copies[task.id] = (task, vclock, name)
                    ids.add(task.id)
            if ids:
                self._left[name] = ids
        if not ids:
            self._delete([name])

    def _delete(self, names):
        def delete(name):
            try:
                self.store.riak.call(self.store.client.delete, self.store.btype, self.store.bucket(NOTES), name)
            except StoreError as exc:
                log.debug("opening note %s not deleted (retried when it ages out): %s", name, exc)
            with self._lock:
                self._seen.add(name)
                for key in self._left.pop(name, ()):
                    self._copies.pop(key, None)
        self.store.riak.map(delete, names)

    def names(self):
        """Every note's name (the benchmark's clean-up on a real node)."""
        return [name for _, name in self.store.riak.index_iter(
            self.store.btype, self.store.bucket(NOTES), "written_bin", start=f"{NOTES}:{number_term(0)}",
            end=f"{NOTES}:{HIGH}", page_size=1000, return_terms=True)]
