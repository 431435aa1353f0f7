"""The Riak KV store: tasks and records as JSON objects, queries through 2i.

Layout (DESIGN §3), all buckets in one bucket type with allow_mult = true:

- `<prefix>_task/<id>`: the task record; indexes
  `status_bin` = status; `todo_bin` = `<inverted priority>:<cat>:<id>` while
  todo and ready (fixed width, so one sorted range query yields assignment order);
  `statuscat_bin` = `<status>:<cat>`; `assignee_bin` = assignee while nextup
  (`<assignee>;cancel` once marked for cancellation, see riak_terms);
  `finished_bin` = `<status>:<ended>` once done/failed (throughput; task.ended_at);
  `due_bin` = `<due>` instead of the todo terms while a task waits (delays.py).
- `<prefix>_instance/<name>`, `<prefix>_inbox/<name>`,
  `<prefix>_scheduler/lease`: single-writer JSON records, found through the
  `written_bin` index (`<kind>:<written µs>`), never by listing keys; the
  term doubles as the record's version, so a reader skips unchanged ones.

Every write of a task carries the vector clock it read. Siblings (concurrent
writers, or a partition) are merged by `task.merge` (highest `rev`, then the
further status) and the merged value is written back with the clock of the
read that saw them. A record's writer keeps the clock of its own last write
(returnbody), so its writes supersede each other instead of piling up
siblings; readers pick the newest sibling by `_written`.
"""

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from riaktq_cli.errors import (ConfigError, DuplicateTask, ForeignValue, PartialCreate, PartialUpdate,
                               StoreError, StoreRefused, StoreUnavailable)
from riaktq_cli.riak import (RiakClient, RiakConflict, RiakError, RiakRefused, RiakUnavailable,
                             TlsSettings)
from riaktq_cli.store.base import Store
from riaktq_cli.store import riak_terms
from riaktq_cli.store.riak_notes import NOTE_MIN, OpeningNotes, settle
from riaktq_cli.store.riak_queries import RiakQueries
from riaktq_cli.store.riak_records import RiakRecords
from riaktq_cli.store.riak_terms import (HIGH, JSON, NAME_FIRST, NAME_LAST, PARALLEL, decode_siblings, number_term,
                                         parse_assignee_term, tag_key, task_indexes)
from riaktq_cli.task import NEXTUP, TODO, Task, merge, ready

log = logging.getLogger("riaktq")

class RiakStore(RiakQueries, RiakRecords, Store):
    """Store on a Riak KV cluster through its PB or HTTP API (the client's choice)."""

    def __init__(self, client, bucket_type="riaktq", prefix="riaktq"):
        self.client = client
        self.btype = bucket_type
        self.prefix = prefix
        self._vclocks = {}            # (kind, name) -> vclock of our last read/write
        self._listed = {}             # (kind, name) -> (written_bin term, doc) last listed
        self._vclock_lock = threading.Lock()
        self._pool = None
        self.parallel = PARALLEL
        # Tasks whose last version this process read or wrote itself, with
        # the vector clock of that version (see _known_task): a transition
        # on one of them needs no GET first.
        self._known = {}
        self._known_lock = threading.Lock()
        self._notes = OpeningNotes(self)     # batch opens' copies (riak_notes.py)

    @classmethod
    def from_config(cls, config):
        riak = config.values["riak"]
        username, password = config.riak_credentials()
        parallel = riak.get("concurrency", PARALLEL)
        tls = TlsSettings(ca_file=config.riak_file("ca_file"), cert_file=config.riak_file("cert_file"),
                          key_file=config.riak_file("key_file"), verify=riak["verify"])
        try:
            client = RiakClient(riak["nodes"], timeout=riak["timeout"], pool_size=parallel,
                                username=username, password=password, tls=tls)
        except ValueError as exc:
            raise ConfigError(f"[riak] {exc}".replace("[riak] riak: ", "[riak] ")) from None
        store = cls(client, bucket_type=riak["bucket_type"], prefix=riak["prefix"])
        store.parallel = parallel
        return store

    def bucket(self, kind):
        return f"{self.prefix}_{kind}"

    # --- plumbing ----------------------------------------------------------
    def _guard(self, fn, *args, **kwargs):
        """Run a client call, turning Riak failures into store errors."""
        try:
            return fn(*args, **kwargs)
        except RiakRefused as exc:
            # Final for this request, but daemons keep retrying: an operator
            # may be fixing the grant or the password right now.
            raise StoreRefused(str(exc)) from None
        except RiakUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None
        except RiakError as exc:
            text = str(exc)
            if "does not exist" in text and "bucket type" in text:
                text += " (see `riaktq check`)"
            raise StoreError(text if text.startswith("riak") else f"riak: {text}") from None

    def _map(self, fn, items):
        """fn over items with up to PARALLEL requests in flight, in order."""
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        with self._vclock_lock:     # two threads must not each start a pool
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="riak")
        return list(self._pool.map(fn, items))

    # --- tasks -------------------------------------------------------------
    def _fetch_task(self, task_id):
        """(task or None, vclock); siblings are merged and written back."""
        obj = self._guard(self.client.fetch, self.btype, self.bucket("task"), task_id)
        if obj is None:
            return None, None
        live = obj.live_siblings
        if not live:
            return None, obj.vclock
        copies = []
        for doc in decode_siblings(live, f"task {task_id!r}"):
            try:
                copies.append(Task.from_record(doc))
            except (KeyError, TypeError, ValueError, AttributeError):
                log.warning("riak: ignoring a copy of task %r that is not a riaktq task", task_id)
        if not copies:
            raise ForeignValue(f"riak: task {task_id!r} holds a value that is not a riaktq task")
        task = merge(copies) if len(copies) > 1 else copies[0]
        if len(obj.siblings) > 1:
            # Read repair: one resolved value, written with the clock that
            # saw every sibling, so later readers find no siblings.
            resolved = self._store_task(task, obj.vclock, returnbody=True)
            return task, resolved.vclock if resolved is not None else None
        return task, obj.vclock

    def _store_task(self, task, vclock, returnbody=False):
        """Write `task` over the version `vclock` names; with returnbody the
        object as stored (siblings included), else None."""
        body = json.dumps(task.to_record(), separators=(",", ":")).encode()
        return self._guard(self.client.store, self.btype, self.bucket("task"), task.id, body, JSON,
                           vclock=vclock, indexes=task_indexes(task), returnbody=returnbody)

    # A version this process read or wrote itself needs no GET before the
    # next transition: if someone else wrote the task since, our write with
    # the older clock makes a sibling, and every reader's merge by `rev`
    # resolves it (DESIGN §3). Kept only for tasks in flight: todo tasks
    # read by iter_todo (until the next call) and nextup tasks this process
    # wrote (until they leave nextup, or the nextup index stops listing them,
    # e.g. after `rm`). Saves a GET per assign and per close.
    def _known_task(self, task_id):
        with self._known_lock:
            return self._known.pop(task_id, None)

    def _remember(self, task, vclock):
        with self._known_lock:
            self._known[task.id] = (task, vclock)

    def create_tasks(self, tasks):
        noted = len(tasks) >= NOTE_MIN    # a batch: note each new version for the scheduler
        created = []

        def create(task):
            body = json.dumps(task.to_record(), separators=(",", ":")).encode()
            try:
                stored = self._guard(self.client.store, self.btype, self.bucket("task"), task.id, body, JSON,
                                     indexes=task_indexes(task), if_none_match=True, returnbody=noted)
                if stored is not None and len(stored.siblings) == 1:
                    created.append((task, stored.vclock))
                return None
            except StoreError as exc:
                if not isinstance(exc.__context__, RiakConflict) and "exists" not in str(exc):
                    return exc
                existing, _ = self._fetch_task(task.id)
                # A retried create may have been applied by its first attempt:
                # the same record is our own write, not a duplicate.
                if existing is not None and existing.to_record() == task.to_record():
                    return None
                return DuplicateTask(task.id)
            except StoreUnavailable as exc:
                return exc
        results = self._map(create, tasks)
        if created:
            order = {task.id: n for n, task in enumerate(tasks)}
            OpeningNotes.write(self, sorted(created, key=lambda pair: order[pair[0].id]))
        unavailable = next((e for e in results if isinstance(e, StoreUnavailable)), None)
        if unavailable is not None:   # say which landed: the caller names the others
            raise PartialCreate(str(unavailable), results)
        return results

    def get_task(self, task_id):
        return self._fetch_task(task_id)[0]

    def _readable(self, fn, task_id):
        """fn(task_id), or None for a task whose value is not ours: one bad
        key must not stall every iteration that touches a batch with it."""
        try:
            return fn(task_id)
        except ForeignValue as exc:
            log.warning("skipping task %r: %s", task_id, exc)
            return None

    def _fetch_known(self, task_id):
        return self._readable(self._fetch_task, task_id) or (None, None)

    def get_tasks(self, task_ids):
        ids = list(dict.fromkeys(task_ids))
        found = self._map(lambda i: self._readable(self.get_task, i), ids)
        return {t.id: t for t in found if t is not None}

    def delete_task(self, task_id, status=None):
        self._known_task(task_id)
        task, vclock = self._fetch_task(task_id)
        if task is None or status not in (None, task.status):
            return False
        self._guard(self.client.delete, self.btype, self.bucket("task"), task_id, vclock=vclock)
        return True

    def delete_tasks(self, task_ids, status=None):
        return sum(self._map(lambda task_id: self.delete_task(task_id, status), task_ids))

    def update_tasks(self, task_ids, change):
        """Read-modify-write each task with its vector clock, PARALLEL at a
        time. Three outcomes per task: written; left alone (missing, not
        ours to read, or `change` said None); or failed -- the write got no
        clear answer (timeout, 503, any other error), so it may have landed.
        Failed ids raise PartialUpdate carrying what was written, and the
        caller retries them knowing they may already be applied."""
        failed = []   # (task_id, error)

        def update(task_id):
            known = self._known_task(task_id)
            try:
                old, vclock = known or self._fetch_task(task_id)
            except ForeignValue as exc:
                log.warning("skipping task %r: %s", task_id, exc)
                return None
            except StoreError as exc:
                failed.append((task_id, exc))
                return None
            new = change(old) if old is not None else None
            if new is None:
                if known:
                    self._remember(old, vclock)
                return None
            keep = new.status == NEXTUP
            try:
                stored = self._store_task(new, vclock, returnbody=keep)
                won = stored is None or len(stored.siblings) == 1 or settle(self, new, stored)
            except StoreError as exc:
                failed.append((task_id, exc))
                return None
            if not won:
                return None      # deleted, or another version is ahead: not written
            if stored is not None and len(stored.siblings) == 1:
                self._remember(new, stored.vclock)   # a sibling means: read it next time
            return old, new
        ids = list(dict.fromkeys(task_ids))
        written = [o for o in self._map(update, ids) if o is not None]
        if failed:
            order = {task_id: n for n, task_id in enumerate(ids)}
            failed.sort(key=lambda pair: order[pair[0]])
            raise PartialUpdate(f"{len(failed)} of {len(ids)} task write(s) failed: {failed[0][1]}",
                                written, [task_id for task_id, _ in failed])
        return written

    def iter_todo(self, page_size=100, tags=None):
        """Todo tasks in assignment order from one paginated range query on
        `todo_bin` (or, for one tag set, on `todotag_bin`). The first page is
        `page_size` (the scheduler asks for as many as it has free slots);
        later pages double, up to 500, so tasks skipped for their tags cost
        few requests."""
        continuation, seen = None, set()
        size = max(1, page_size)
        field, start, end = "todo_bin", number_term(0), HIGH + ";"
        if tags is not None:
            prefix = tag_key(tags) + ";"
            field, start, end = "todotag_bin", prefix + start, prefix + end
        while True:
            page = self._guard(self.client.index, self.btype, self.bucket("task"), field, start=start,
                               end=end, max_results=size, continuation=continuation, return_terms=True)
            pairs = [(term, key) for term, key in page.results if key not in seen]
            keys = list(dict.fromkeys(key for _, key in pairs))
            seen.update(keys)
            noted = self._notes.lookup(pairs)
            read = [k for k in keys if k not in noted]
            fetched = dict(zip(read, self._map(self._fetch_known, read)))
            self._notes.used(keys)
            found = {}
            for task_id in keys:
                task, vclock = noted.get(task_id) or fetched[task_id]
                if task is not None:
                    found[task_id] = task
                    if task.status == TODO:
                        self._remember(task, vclock)
            # The index may lag a concurrent change (or list a sibling's old
            # term): trust only what the task itself says.
            yield from (found[k] for k in keys if k in found and ready(found[k]))
            if not page.continuation:
                return
            continuation = page.continuation
            size = min(500, size * 2)

    due_tasks = riak_terms.due_tasks

    def todo_tagsets(self):
        start = " "   # below ";" and every printable tag character; Riak wants a non-empty term
        while True:
            # one seek: the first term at or after `start`; then jump past
            # every term of that tag set (";" < "<" and tags hold no ";").
            page = self._guard(self.client.index, self.btype, self.bucket("task"), "todotag_bin",
                               start=start, end="\U0010ffff", max_results=1, return_terms=True)
            if not page.results:
                return
            key = page.results[0][0].split(";", 1)[0]
            yield tuple(key.split(",")) if key else ()
            start = key + "<"

    def _index_iter(self, *args, **kwargs):
        """index_all with errors mapped, lazily."""
        it = self._guard(self.client.index_all, *args, **kwargs)
        while True:
            try:
                item = self._guard(next, it)
            except StopIteration:
                return
            yield item

    def nextup_states(self):
        pairs = self._index_iter(self.btype, self.bucket("task"), "assignee_bin",
                                 start=NAME_FIRST, end=NAME_LAST, page_size=1000, return_terms=True)
        found = {}
        for term, key in pairs:
            # a task with siblings can list two terms: any mark counts
            assignee, marked = parse_assignee_term(term)
            if marked or key not in found:
                found[key] = (assignee, marked)
        with self._known_lock:
            # a known task no longer listed as nextup was changed by someone
            # else (rm, cancel): read it afresh before touching it again
            # (and todo tasks read by iter_todo are kept one iteration only)
            for task_id in [i for i, (t, _) in self._known.items() if t.status != NEXTUP or i not in found
                            or (found[i][1] and t.cancel is None)]:
                del self._known[task_id]
        return [(key, assignee, marked) for key, (assignee, marked) in found.items()]

    def listings_partial(self):
        from riaktq_cli.store.riak_cluster import unsettled
        return unsettled(self.client)

    # --- health ------------------------------------------------------------------
    def check(self):
        """Per node: ping, TLS, user and grants; then bucket type, 2i, counts
        (see riak_check.py)."""
        from riaktq_cli.store.riak_check import check_store
        return check_store(self)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self.client.close()
