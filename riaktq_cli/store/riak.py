"""The Riak KV store: tasks and records as JSON objects, queries through 2i.

Layout (DESIGN §3), all buckets in one bucket type with allow_mult = true:

- `<prefix>_task/<id>`: the task record; indexes
  `status_bin` = status; `todo_bin` = `<inverted priority>:<cat>:<id>` while
  todo (fixed width, so one sorted range query yields assignment order);
  `statuscat_bin` = `<status>:<cat>`; `assignee_bin` = assignee while nextup;
  `finished_bin` = `<status>:<sat+laf>` once done/failed (throughput).
- `<prefix>_instance/<name>`, `<prefix>_inbox/<name>`,
  `<prefix>_scheduler/lease`: single-writer JSON records, found through the
  `kind_bin` index, never by listing keys.

Every write of a task carries the vector clock it read. Siblings (concurrent
writers, or a partition) are merged by `task.merge` (highest `rev`, then the
further status) and the merged value is written back with the clock of the
read that saw them. A record's writer keeps the clock of its own last write
(returnbody), so its writes supersede each other instead of piling up
siblings; readers pick the newest sibling by `_written`.
"""

import heapq
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from riaktq_cli.clock import now_us
from riaktq_cli.errors import (ConfigError, DuplicateTask, PartialUpdate, StoreError, StoreRefused,
                               StoreUnavailable)
from riaktq_cli.riak import (RiakClient, RiakConflict, RiakError, RiakRefused, RiakUnavailable,
                             TlsSettings)
from riaktq_cli.store.base import LEASE_NAME, SCHEDULER, Store
from riaktq_cli.task import DONE, FAILED, NEXTUP, STATUSES, TODO, Task, merge

log = logging.getLogger("riaktq")

JSON = "application/json"
PRIORITY_OFFSET = (1 << 63) - 1      # inverts priority into a non-negative number
DIGITS = 20                          # fixed width of every number in a term
HIGH = "9" * DIGITS
NAME_FIRST, NAME_LAST = "0", "{"     # instance names start with [0-9A-Za-z]
PARALLEL = 8                         # concurrent requests for multi-key reads/writes


def _num(value):
    return f"{value:0{DIGITS}d}"


def todo_term(task):
    return f"{_num(PRIORITY_OFFSET - task.priority)}:{_num(task.cat)}:{task.id}"


def task_indexes(task):
    """The whole index set of a task in its current state."""
    indexes = {"status_bin": task.status, "statuscat_bin": f"{task.status}:{_num(task.cat)}"}
    if task.status == TODO:
        indexes["todo_bin"] = todo_term(task)
    elif task.status == NEXTUP and task.assignee:
        indexes["assignee_bin"] = task.assignee
    elif task.sat is not None and task.laf is not None:
        indexes["finished_bin"] = f"{task.status}:{_num(task.sat + task.laf)}"
    return indexes


def _decode(siblings, what):
    """Parse the JSON value of each sibling, skipping any that is not JSON
    (a value some other program wrote under our key); logged once each."""
    docs = []
    for sibling in siblings:
        try:
            docs.append(json.loads(sibling.value))
        except ValueError:
            log.warning("riak: ignoring a value of %s that is not JSON (%d bytes)", what, len(sibling.value))
    return docs


class RiakStore(Store):
    """Store on a Riak KV cluster through its HTTP API."""

    def __init__(self, client, bucket_type="riaktq", prefix="riaktq"):
        self.client = client
        self.btype = bucket_type
        self.prefix = prefix
        self._vclocks = {}            # (kind, name) -> vclock of our last read/write
        self._vclock_lock = threading.Lock()
        self._pool = None

    @classmethod
    def from_config(cls, config):
        riak = config.values["riak"]
        username, password = config.riak_credentials()
        tls = TlsSettings(ca_file=config.riak_file("ca_file"), cert_file=config.riak_file("cert_file"),
                          key_file=config.riak_file("key_file"), verify=riak["verify"])
        try:
            client = RiakClient(riak["nodes"], timeout=riak["timeout"], pool_size=PARALLEL,
                                username=username, password=password, tls=tls)
        except ValueError as exc:
            raise ConfigError(f"[riak] {exc}".replace("[riak] riak: ", "[riak] ")) from None
        return cls(client, bucket_type=riak["bucket_type"], prefix=riak["prefix"])

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
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="riak")
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
        try:
            copies = [Task.from_record(doc) for doc in _decode(live, f"task {task_id!r}")]
        except (KeyError, TypeError, ValueError):
            copies = []
        if not copies:
            raise StoreError(f"riak: task {task_id!r} holds a value that is not a riaktq task")
        task = merge(copies) if len(copies) > 1 else copies[0]
        if len(obj.siblings) > 1:
            # Read repair: one resolved value, written with the clock that
            # saw every sibling, so later readers find no siblings.
            resolved = self._store_task(task, obj.vclock, returnbody=True)
            return task, resolved
        return task, obj.vclock

    def _store_task(self, task, vclock, returnbody=False):
        body = json.dumps(task.to_record(), separators=(",", ":")).encode()
        result = self._guard(self.client.store, self.btype, self.bucket("task"), task.id, body, JSON,
                             vclock=vclock, indexes=task_indexes(task), returnbody=returnbody)
        return result.vclock if result is not None else None

    def create_tasks(self, tasks):
        def create(task):
            body = json.dumps(task.to_record(), separators=(",", ":")).encode()
            try:
                self._guard(self.client.store, self.btype, self.bucket("task"), task.id, body, JSON,
                            indexes=task_indexes(task), if_none_match=True)
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
        for error in results:
            if isinstance(error, StoreUnavailable):
                raise error
        return results

    def get_task(self, task_id):
        return self._fetch_task(task_id)[0]

    def _readable(self, fn, task_id):
        """fn(task_id), or None for a task whose value is not ours: one bad
        key must not stall every iteration that touches a batch with it."""
        try:
            return fn(task_id)
        except StoreUnavailable:
            raise
        except StoreError as exc:
            log.warning("skipping task %r: %s", task_id, exc)
            return None

    def get_tasks(self, task_ids):
        ids = list(dict.fromkeys(task_ids))
        found = self._map(lambda i: self._readable(self.get_task, i), ids)
        return {t.id: t for t in found if t is not None}

    def delete_task(self, task_id):
        task, vclock = self._fetch_task(task_id)
        if task is None:
            return False
        self._guard(self.client.delete, self.btype, self.bucket("task"), task_id, vclock=vclock)
        return True

    def update_tasks(self, task_ids, change):
        def update(task_id):
            old, vclock = self._fetch_task(task_id)
            if old is None:
                return None
            new = change(old)
            if new is None:
                return None
            self._store_task(new, vclock)
            return old, new
        def attempt(task_id):
            try:
                return self._readable(update, task_id)
            except StoreUnavailable as exc:
                return exc
        ids = list(dict.fromkeys(task_ids))
        outcomes = self._map(attempt, ids)
        written = [o for o in outcomes if isinstance(o, tuple)]
        failed = [i for i, o in zip(ids, outcomes) if isinstance(o, StoreUnavailable)]
        if failed:
            first = next(o for o in outcomes if isinstance(o, StoreUnavailable))
            raise PartialUpdate(f"{len(failed)} of {len(ids)} task write(s) failed: {first}", written, failed)
        return written

    def iter_todo(self, page_size=100):
        """Todo tasks in assignment order from one paginated range query on
        `todo_bin`. The first page is `page_size` (the scheduler asks for as
        many as it has free slots); later pages double, up to 500, so tasks
        skipped for their tags cost few requests."""
        continuation, seen = None, set()
        size = max(1, page_size)
        while True:
            page = self._guard(self.client.index, self.btype, self.bucket("task"), "todo_bin",
                               start=_num(0), end=HIGH + ";", max_results=size, continuation=continuation)
            keys = [k for k in page.keys if k not in seen]
            seen.update(keys)
            found = self.get_tasks(keys)
            # The index may lag a concurrent change (or list a sibling's old
            # term): trust only what the task itself says.
            for key in keys:
                task = found.get(key)
                if task is not None and task.status == TODO:
                    yield task
            if not page.continuation:
                return
            continuation = page.continuation
            size = min(500, size * 2)

    def _index_iter(self, *args, **kwargs):
        """index_all with errors mapped, lazily."""
        it = self._guard(self.client.index_all, *args, **kwargs)
        while True:
            try:
                item = self._guard(next, it)
            except StopIteration:
                return
            yield item

    def nextup_assignees(self):
        pairs = self._index_iter(self.btype, self.bucket("task"), "assignee_bin",
                                 start=NAME_FIRST, end=NAME_LAST, page_size=1000, return_terms=True)
        return [(key, term) for term, key in pairs]

    def _status_cat_iter(self, status, created_before, page_size):
        end = HIGH if created_before is None else _num(max(0, created_before - 1))
        if created_before is not None and created_before <= 0:
            return
        for term, key in self._index_iter(self.btype, self.bucket("task"), "statuscat_bin",
                                          start=f"{status}:{_num(0)}", end=f"{status}:{end}",
                                          page_size=page_size, return_terms=True):
            yield int(term.rsplit(":", 1)[1]), key

    def iter_ids(self, status=None, created_before=None, page_size=1000):
        statuses = [status] if status is not None else list(STATUSES)
        streams = [self._status_cat_iter(s, created_before, page_size) for s in statuses]
        last = None
        for cat_key in heapq.merge(*streams):
            if cat_key != last:   # a task with siblings can carry two terms
                last = cat_key
                yield cat_key[1]

    def _count_distinct(self, *args, **kwargs):
        """Count the keys of a paginated 2i query in constant memory.

        Paginated results come sorted by key for an exact match, so a key
        that siblings list twice is next to itself. On a range a key with
        two terms (siblings not yet resolved by a read) can count twice:
        a transient over-count of a statistic, never a correctness issue.
        """
        count, last = 0, None
        for key in self._index_iter(*args, **kwargs):
            if key != last:
                count += 1
                last = key
        return count

    def count_by_status(self):
        return {status: self._count_distinct(self.btype, self.bucket("task"), "status_bin", status,
                                             page_size=10000)
                for status in STATUSES}

    def oldest_cat(self, status):
        page = self._guard(self.client.index, self.btype, self.bucket("task"), "statuscat_bin",
                           start=f"{status}:{_num(0)}", end=f"{status}:{HIGH}",
                           max_results=1, return_terms=True)
        return int(page.results[0][0].rsplit(":", 1)[1]) if page.results else None

    def count_finished_since(self, since_us, status=None):
        return sum(self._count_distinct(self.btype, self.bucket("task"), "finished_bin",
                                        start=f"{s}:{_num(max(0, since_us))}", end=f"{s}:{HIGH}",
                                        page_size=10000)
                   for s in ([status] if status else [DONE, FAILED]))

    # --- records -------------------------------------------------------------
    def _fetch_record(self, kind, name):
        obj = self._guard(self.client.fetch, self.btype, self.bucket(kind), name)
        if obj is None:
            return None, None
        docs = [d for d in _decode(obj.live_siblings, f"{kind} {name!r}") if isinstance(d, dict)]
        doc = max(docs, key=lambda d: d.get("_written", 0)) if docs else None
        return doc, obj.vclock

    def get_record(self, kind, name):
        doc, vclock = self._fetch_record(kind, name)
        with self._vclock_lock:
            self._vclocks[(kind, name)] = vclock
        if doc is not None:
            doc = dict(doc)
            doc.pop("_written", None)
        return doc

    def put_record(self, kind, name, doc):
        key = (kind, name)
        with self._vclock_lock:
            known = key in self._vclocks
            vclock = self._vclocks.get(key)
        if not known:
            _, vclock = self._fetch_record(kind, name)
        self._put_record(kind, name, doc, vclock)

    def _put_record(self, kind, name, doc, vclock):
        body = dict(doc, _written=now_us())
        result = self._guard(self.client.store, self.btype, self.bucket(kind), name,
                             json.dumps(body, separators=(",", ":")).encode(), JSON,
                             vclock=vclock, indexes={"kind_bin": kind}, returnbody=True)
        with self._vclock_lock:
            self._vclocks[(kind, name)] = result.vclock if result is not None else None
        return result

    def delete_record(self, kind, name):
        _, vclock = self._fetch_record(kind, name)
        if vclock is not None:
            self._guard(self.client.delete, self.btype, self.bucket(kind), name, vclock=vclock)
        with self._vclock_lock:
            self._vclocks.pop((kind, name), None)

    def list_records(self, kind):
        names = list(dict.fromkeys(self._index_iter(self.btype, self.bucket(kind), "kind_bin", kind,
                                                    page_size=1000)))
        docs = self._map(lambda n: (n, self._fetch_record(kind, n)[0]), names)
        return {n: {k: v for k, v in d.items() if k != "_written"} for n, d in docs if d is not None}

    # --- lease -----------------------------------------------------------------
    def _lease_winner(self, obj, now_us_):
        """Among lease siblings, every reader picks the same one: an unexpired
        lease first, then the smallest owner name."""
        leases = [d for d in _decode(obj.live_siblings, "the scheduler lease")
                  if isinstance(d, dict) and {"owner", "expires"} <= set(d)] if obj else []
        if not leases:
            return None
        return min(leases, key=lambda l: (l["expires"] <= now_us_, l["owner"]))

    def acquire_lease(self, owner, ttl_us, now_us_):
        obj = self._guard(self.client.fetch, self.btype, self.bucket(SCHEDULER), LEASE_NAME)
        lease = self._lease_winner(obj, now_us_)
        if lease and lease["owner"] != owner and lease["expires"] > now_us_:
            return False, lease
        mine = {"owner": owner, "expires": now_us_ + ttl_us}
        stored = self._guard(self.client.store, self.btype, self.bucket(SCHEDULER), LEASE_NAME,
                             json.dumps(mine).encode(), JSON, vclock=obj.vclock if obj else None,
                             indexes={"kind_bin": SCHEDULER}, returnbody=True)
        # Two schedulers may have written at once (Riak has no compare-and-
        # set): both then see both siblings and agree on one winner.
        winner = self._lease_winner(stored, now_us_) if stored is not None else mine
        winner = winner or mine
        return winner["owner"] == owner, winner

    def release_lease(self, owner):
        obj = self._guard(self.client.fetch, self.btype, self.bucket(SCHEDULER), LEASE_NAME)
        lease = self._lease_winner(obj, now_us())
        if lease and lease["owner"] == owner:
            self._guard(self.client.delete, self.btype, self.bucket(SCHEDULER), LEASE_NAME, vclock=obj.vclock)

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
