"""The small interface every store implements (SQLite and Riak KV).

Tasks are changed only through `update_tasks`, which applies one of the
pure transitions of `riaktq_cli.task` as a read-modify-write: SQLite in one
transaction per batch, Riak with the vector clock it read, task by task and
in parallel -- hence the contract below says what a batch that half failed
leaves behind. `tests/test_store_contract.py` holds one case per promise,
run on both stores; a new store passes it before anything else. Records
(`instance`, `inbox`, `scheduler`) are JSON documents with a single writer
each (DESIGN section 2), so they need no merging beyond "last write wins".
Nothing here lists a bucket or scans a table on a per-task path: every
query is an index query.
"""

from abc import ABC, abstractmethod

INSTANCE, INBOX, SCHEDULER = "instance", "inbox", "scheduler"
RECORD_KINDS = (INSTANCE, INBOX, SCHEDULER)
LEASE_NAME = "lease"


class Store(ABC):
    """What scheduler, workers and commands need from persistent storage."""

    # --- tasks -------------------------------------------------------------
    @abstractmethod
    def create_tasks(self, tasks):
        """Store new tasks; return a list parallel to `tasks` holding None or
        the exception (DuplicateTask, ...) that kept that task out.

        Per task: created (None), refused as a duplicate (DuplicateTask: a
        task with that id exists), or another StoreError. Riak takes a
        stored record equal to the one given for this call's own retried
        request that had landed, and answers None; SQLite, whose batch is
        one transaction and never retried, answers DuplicateTask (records
        carry their creation time in µs, so two distinct creates are
        never equal).

        Raises instead of returning when the store is unreachable
        (StoreUnavailable), and what landed then differs: SQLite writes the
        batch in one transaction, so nothing of it landed. Riak creates each
        task with a request of its own, in parallel: the creates that
        succeeded before or while another one found no node HAVE landed, and
        the exception (a PartialCreate) says which in its `results` -- a
        caller that retries must treat DuplicateTask for those ids as its
        own earlier write (compare the stored task with what it meant to
        create).
        """

    def create_task(self, task):
        error = self.create_tasks([task])[0]
        if error is not None:
            raise error

    @abstractmethod
    def get_task(self, task_id):
        """The task, or None."""

    def get_tasks(self, task_ids):
        """{id: task} for the ids that exist."""
        found = {}
        for task_id in task_ids:
            task = self.get_task(task_id)
            if task is not None:
                found[task_id] = task
        return found

    @abstractmethod
    def delete_task(self, task_id, status=None):
        """Remove a task; True if it existed (and, with `status`, had that
        status: a task requeued since it was listed is left alone)."""

    def delete_tasks(self, task_ids, status=None):
        """delete_task for each id, as one round (SQLite: one transaction;
        Riak: parallel deletes, each with the vector clock it read); the
        number removed. `purge` deletes a page of ids at a time this way."""
        return sum(1 for task_id in task_ids if self.delete_task(task_id, status))

    @abstractmethod
    def update_tasks(self, task_ids, change):
        """Apply `change(task) -> new task | None` to each existing task.

        Each task is read and written atomically (None = leave it alone).
        Returns the list of (old, new) pairs that were written, in the order
        of `task_ids` (an id given twice counts once). A change never alters
        `id`, `in` or `cat` (no transition does), so a store may leave those
        columns alone.

        `change` is called once per existing task, with the task as stored,
        and never for a missing id. It may be called from several threads
        at once (Riak reads and writes up to [riak] concurrency tasks in
        parallel, calling `change` in the pool's threads): it must be a pure
        function of its task, or guard what it shares with a lock. It must
        not raise: SQLite then rolls the whole batch back, but on Riak the
        other tasks' writes may land, even after the exception has reached
        the caller.

        Three outcomes per task:
        * written -- in the returned list;
        * left alone -- missing, `change` returned None, or (Riak) a value
          that is not a riaktq task (logged and skipped);
        * failed -- the read or the write got no clear answer (timeout, 503,
          an error): the write MAY HAVE LANDED. Only a store without
          multi-key transactions has this outcome: Riak raises PartialUpdate
          after the whole batch ran, `written` holding the (old, new) pairs
          that landed and `failed` the ids (in `task_ids` order) to retry
          knowing they may already be applied: a retried `change` must
          return None for a task it finds already moved.
          SQLite writes a batch in one transaction: all of it, or nothing
          and StoreUnavailable.
        """

    @abstractmethod
    def iter_todo(self, page_size=100, tags=None):
        """Yield `todo` tasks in assignment order (priority desc, cat, id),
        page by page through an index; with `tags` (a sorted tuple, () for
        untagged) only the tasks needing exactly that tag set."""

    @abstractmethod
    def todo_tagsets(self):
        """Yield each distinct tag set (sorted tuple) among `todo` tasks,
        one index seek per set: the scheduler's way around a backlog that
        no live instance can take, without scanning the backlog."""

    @abstractmethod
    def due_tasks(self, start=0, end=None, limit=500):
        """[(due, task id)] of up to `limit` tasks waiting for a due time
        (µs) from `start` to `end` (None: no bound), earliest first, from an
        index on the due time that holds only waiting tasks (SQLite: the
        partial index tasks_waiting; Riak: `due_bin`). Waiting tasks are in no
        todo order: the scheduler asks here which have come due and clears
        their due time (task.release), which moves them into it."""

    @abstractmethod
    def nextup_states(self):
        """[(task_id, assignee, cancelling)] of every `nextup` task, from one
        index read: `cancelling` is True when `riaktq cancel` marked it, so
        the scheduler learns of cancellations from the read it makes anyway
        (on Riak the mark is part of the `assignee_bin` term)."""

    def nextup_assignees(self):
        """[(task_id, assignee)] of every `nextup` task, from an index."""
        return [(task_id, assignee) for task_id, assignee, _ in self.nextup_states()]

    @abstractmethod
    def iter_ids(self, status=None, created_before=None, page_size=1000):
        """Yield ids of tasks with `status` (any if None) and `cat` <
        `created_before` (µs; no bound if None), oldest first, paginated so
        memory stays bounded however many match."""

    @abstractmethod
    def count_by_status(self):
        """{status: count} for every status."""

    @abstractmethod
    def oldest_cat(self, status):
        """The smallest `cat` among tasks with `status`, or None."""

    # --- single-writer records ---------------------------------------------
    @abstractmethod
    def get_record(self, kind, name):
        """The JSON document stored under kind/name, or None."""

    @abstractmethod
    def put_record(self, kind, name, doc):
        """Replace kind/name with `doc` (a JSON-able dict)."""

    def put_records(self, kind, docs):
        """put_record for each {name: doc}; a store may write them at once."""
        for name, doc in docs.items():
            self.put_record(kind, name, doc)

    @abstractmethod
    def delete_record(self, kind, name):
        """Remove kind/name if present."""

    @abstractmethod
    def list_records(self, kind):
        """{name: doc} of every record of `kind`, through an index."""

    # --- the scheduler lease -----------------------------------------------
    # The decision (who holds it, which epoch) is `riaktq_cli.lease.decide`,
    # the same for every store; a store only reads and writes the copies.
    lease_needs_settle = False
    """True where two concurrent read-then-write swaps can both succeed (no
    compare-and-set): a takeover must then wait and look again (lease.py)."""

    @abstractmethod
    def read_lease(self):
        """Every copy of the lease document (siblings on Riak), maybe []."""

    @abstractmethod
    def swap_lease(self, choose):
        """Read the copies, call choose(copies) -> doc or None, write doc
        (replacing every copy) unless None; return the copies visible after
        the write (on Riak a concurrent writer's copy can be among them)."""

    def clear_lease(self, owner):
        """Give the lease up if `owner` holds it: its copy stays, expired,
        so the next takeover's epoch counts from it (lease.released)."""
        from riaktq_cli.lease import released
        self.swap_lease(lambda copies: released(copies, owner))

    # --- change detection ------------------------------------------------------
    def data_version(self):
        """A value that changes when another process has written to the
        store, if the store can tell that cheaply; None if it cannot.

        Scheduler and workers poll it to act on a change at once instead of
        at their next interval (SQLite: PRAGMA data_version). Riak has no such
        signal, so there they keep to their intervals."""
        return None

    def listings_partial(self):
        """None when the store's listings (index queries: counts, ids by
        status, instance records) are whole as far as it can tell; else one
        line saying why they may leave things out now.

        A Riak cluster catching up -- a node down, or handing data back
        after it rejoined -- answers 2i queries from vnodes that lack recent
        writes (see store/riak_cluster.py); SQLite's are always whole. Not
        for the scheduler's per-iteration path: operator commands ask it
        once (a request per node on Riak)."""
        return None

    # --- life cycle ----------------------------------------------------------
    def check(self):
        """Yield (ok: bool, line: str) checks of the store's health."""
        return iter(())

    def close(self):
        """Release connections."""

    def compact(self):
        """Give back the space of deleted tasks; (bytes before, bytes after),
        or None where there is nothing to do.

        Deleting rows does not shrink an SQLite file (the pages are reused,
        not returned) and its WAL only shrinks at a truncating checkpoint,
        so SQLite rewrites the file here. Riak needs nothing: a delete
        leaves a tombstone that Riak reaps itself (delete_mode), and its
        backends compact their own files, so Riak keeps this no-op."""
        return None

    # --- observer figures ------------------------------------------------------
    def count_finished_since(self, since_us, status=None):
        """How many tasks finished at or after `since_us` (µs since epoch).

        Finished means `status` is done or failed (only `status` if given,
        which must be one of those two) and `task.ended_at >= since_us`: the
        moment the task ended -- also one cancelled while todo or failed by
        loss, which has no run times of its own. Tasks restarted or requeued
        since are `todo` again and not counted. Stores answer it from an
        index (SQLite: the partial index `tasks_ended`; Riak: a 2i range
        query on `finished_bin` counted page by page). This fallback is correct, but reads every finished task
        page by page: a store should override it.
        """
        from riaktq_cli.task import ended_at
        count = 0
        for st in (("done", "failed") if status is None else (status,)):
            ids = self.iter_ids(status=st)
            while True:
                chunk = [task_id for _, task_id in zip(range(500), ids)]
                if not chunk:
                    break
                count += sum(1 for t in self.get_tasks(chunk).values()
                             if t.status == st and (ended := ended_at(t)) is not None and ended >= since_us)
        return count
