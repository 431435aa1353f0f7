"""The Python API: how an application opens tasks, reads and waits for their
results, lists, requeues and removes them. The `riaktq` commands are built on
it, so a script and the command line see the same queue the same way.

    from riaktq_cli import Queue, TaskExists, WaitTimeout

    with Queue.from_config() as q:            # --config's lookup; else the embedded store
        q.open("resize-42", b"...", priority=5, tags=["gpu"], retry=2)
        [task] = q.wait(["resize-42"], timeout=30)
        print(task.status, task.out)

Every failure is a `RiaktqError` (errors.py): `TaskExists`, `NoSuchTask`,
`BadInput`, `WaitTimeout`, `StoreUnavailable`, ... each with the exit code
the command line gives it. Input is checked by the same functions as every
command (`task.new_task`: ids, bounds, tags). One Queue may be shared by
threads: both stores serialise or pool their connections.

Imports are kept to what `riaktq open` needs (its fast lane goes through
`Queue.open`): no typing, threading or dataclasses at run time, the store
module only when a queue is made.
"""

from __future__ import annotations

import _thread
import itertools
import time

from riaktq_cli.core import task as transitions
from riaktq_cli.api.control import Control
from riaktq_cli.api.outcomes import Outcome, batch_outcomes, chunks
from riaktq_cli.api.inputs import (
    check_status,
    checked,
    created_before,
    make_task,
    moment,
    seconds,
    task_from_mapping,
)
from riaktq_cli.core.backoff import Backoff
from riaktq_cli.core.errors import (
    BadInput,
    BadTasks,
    NoSuchTask,
    QueueClosed,
    RiaktqError,
    WaitTimeout,
    WrongStatus,
)
from riaktq_cli.core.task import FINISHED, Task

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` costs `riaktq open` start-up time
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from os import PathLike
    from typing import Any

    from riaktq_cli.config.loading import Config
    from riaktq_cli.store.base import Store

__all__ = ["Queue", "Task", "Outcome", "make_task"]

ID_PAGE = 1000         # ids per index page
ID_PAGE_MAX = 100_000  # the largest page `ids` asks the store for
WAIT_FIRST = 0.05      # seconds before the first re-read in `wait`
WAIT_MAX = 1.0         # the longest pause between reads (Riak), or between full reads (SQLite)
WAIT_GROWTH = 1.5
WAKE_CHECK = 0.01      # SQLite: how often `wait` asks whether another process wrote
HINT_ADDRESS_TTL = 5.0  # seconds the scheduler's published hint address is used before it is read again


class Queue(Control):
    """A riaktq queue, on the store a config names (or on `store` itself).

    Use `Queue.from_config()`; `with` closes its connections. Every method
    may be called from any thread. Cancel, pause, resume and forgetting an
    instance come from `Control` (api_control.py)."""

    def __init__(self, store: Store, config: Config | None = None):
        self._store: Store | None = store
        self.config = config
        self._lock = _thread.allocate_lock()
        self._hints: Any = None            # runtime.hints.Hints, made at the first hint
        self._scheduler_hint: tuple[float, str | None] = (-HINT_ADDRESS_TTL, None)   # (read at, address)

    # --- life cycle --------------------------------------------------------
    @classmethod
    def from_config(cls, path: str | PathLike[str] | None = None) -> Queue:
        """The queue of a config file: `path`, else $RIAKTQ_CONFIG, else
        ./riaktq.toml, else the embedded store ./riaktq.db (created if
        missing). ConfigError (exit 2) for a bad file."""
        from riaktq_cli.config import loading as config
        return cls.from_loaded(config.load(None if path is None else str(path)))

    @classmethod
    def from_loaded(cls, cfg: Config) -> Queue:
        """The queue of a config already loaded (riaktq_cli.config.loading.load)."""
        from riaktq_cli.store import open_store
        return cls(open_store(cfg), cfg)

    @property
    def store(self) -> Store:
        """The store underneath, for what the API does not cover (the
        scheduler, workers, health checks). QueueClosed once closed."""
        store = self._store
        if store is None:
            raise QueueClosed()
        return store

    def close(self) -> None:
        """Release the store's connections; later calls raise QueueClosed."""
        with self._lock:
            store, self._store = self._store, None
            hints, self._hints = self._hints, None
        if store is not None:
            store.close()
        if hints is not None:
            hints.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.config.describe_store() if self.config is not None else type(self._store).__name__
        return f"<Queue {where}{'' if self._store is not None else ' (closed)'}>"

    # --- opening -----------------------------------------------------------
    def open(self, id: str, data: bytes | str = b"", *, priority: int = 0, tags: Iterable[str] = (),
             retry: int = 0, max_attempts: int | None = None, time_limit: float | str | None = None,
             delay: float | str | None = None, at: str | int | None = None,
             retry_delay: float | str | None = None) -> Task:
        """Put a new task in the queue and return it (status `todo`).

        `priority`: higher runs first; `tags`: features the worker must
        offer; `retry`: restarts after a failure; `max_attempts`: runs that
        may die with their worker before the task fails (default: the
        scheduler's); `time_limit`: seconds or "10m" (default: the
        worker's); `delay` ("10m") or `at` (ISO 8601 with a timezone): not
        assigned before; `retry_delay`: the first restart waits this long,
        doubling per run (default: the scheduler's). TaskExists if the id is
        taken, BadInput if a value is out of bounds, StoreUnavailable if the
        store cannot be reached."""
        new = make_task(id, data, priority=priority, tags=tags, retry=retry, max_attempts=max_attempts,
                        time_limit=time_limit, delay=delay, at=at, retry_delay=retry_delay)
        self.store.create_task(new)
        self.hint_scheduler()
        return new

    def open_many(self, tasks: Iterable[Mapping[str, Any]]) -> list[Outcome]:
        """Open many tasks in one round of writes (SQLite: one transaction;
        Riak: parallel requests); one Outcome per task, in order.

        Each task is a mapping of `open`'s arguments: {"id": ..., "data":
        ..., "priority": ...}. If any is malformed, BadTasks (a BadInput)
        lists them all and none is opened; an id that exists is reported
        in its Outcome (TaskExists) and the others are opened. When no node
        answers for some of them, StoreUnavailable; on Riak a PartialCreate
        whose `results` (None: opened) say which were opened."""
        made, problems = [], []
        for n, spec in enumerate(tasks):
            try:
                made.append(task_from_mapping(spec))
            except BadInput as exc:
                problems.append((n, str(exc)))
        if problems:
            raise BadTasks(problems)
        errors = self.store.create_tasks(made) if made else []
        self.hint_scheduler()
        return [Outcome(t.id, t if e is None else None, e) for t, e in zip(made, errors)]

    def hint_scheduler(self) -> None:
        """Tell the running scheduler to look now: one wake-up hint
        (runtime/hints.py) to the address it publishes, read at most every
        HINT_ADDRESS_TTL seconds. Nothing when it publishes none (the
        embedded store); never raises: a hint lost is a poll later."""
        if self.config is None:
            return
        read_at, address = self._scheduler_hint
        now = time.monotonic()
        try:
            if now - read_at >= HINT_ADDRESS_TTL:
                from riaktq_cli.store import published
                settings = published.read(self.store)
                address = settings.hint if settings is not None else None
                self._scheduler_hint = (now, address)
            if address is None:
                return
            if self._hints is None:
                from riaktq_cli.runtime import hints
                self._hints = hints.for_config(self.config)
            self._hints.send(address)
        except RiaktqError:
            pass   # the store went away after the write: the scheduler will poll

    # --- reading -----------------------------------------------------------
    def get(self, id: str) -> Task:
        """The task now; NoSuchTask if there is none."""
        found = self.store.get_task(id)
        if found is None:
            raise NoSuchTask(id)
        return found

    def wait(self, ids: Iterable[str], timeout: float | str | None = None) -> list[Task]:
        """Block until every task is done or failed; return them in order.

        WaitTimeout after `timeout` (seconds or "30s"; None waits for ever)
        with the tasks still pending; NoSuchTask if one does not exist (or
        is removed meanwhile). On the embedded store a write by another
        process wakes it within WAKE_CHECK; on Riak it reads again after a
        pause that grows from 50 ms to 1 s."""
        order = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
        timeout = seconds(timeout, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        done: dict[str, Task] = {}
        pending: dict[str, str] = {}
        pauses = Backoff(WAIT_FIRST, WAIT_MAX, factor=WAIT_GROWTH)
        while True:
            todo = [i for i in order if i not in done]
            for batch in chunks(todo):
                found = self.store.get_tasks(batch)
                for task_id in batch:
                    current = found.get(task_id)
                    if current is None:
                        raise NoSuchTask(task_id)
                    if current.status in FINISHED:
                        done[task_id] = current
                        pending.pop(task_id, None)
                    else:
                        pending[task_id] = current.status
            if not pending:
                return [done[i] for i in order]
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(dict(pending), [done[i] for i in order if i in done])
            pauses.failed()
            self._pause(pauses.delay() if left is None else min(pauses.delay(), left))

    def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the store says another process
        wrote (SQLite's data_version); a store that cannot tell just sleeps."""
        store = self.store
        version = store.data_version()
        if version is None:
            time.sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(WAKE_CHECK, left))
            if store.data_version() != version:
                return

    def ids(self, status: str | None = None, *, limit: int | None = None, age: float | str | None = None,
            created_before_us: int | None = None, page_size: int = ID_PAGE) -> Iterator[str]:
        """Ids of the tasks with `status` (any if None), oldest first, read
        from an index page by page. `age`: only tasks created at least this
        long ago (seconds or "1d"); `created_before_us`: only `cat` below
        it; `limit`: at most this many (None: all)."""
        _check_listing(status, limit)
        page_size = checked(transitions.check_int, page_size, "page size", 1, ID_PAGE_MAX)
        if created_before_us is None:
            created_before_us = created_before(age)
        else:
            created_before_us = moment(created_before_us, "created_before_us")
        found = self.store.iter_ids(status=status, created_before=created_before_us, page_size=page_size)
        return found if limit is None else itertools.islice(found, limit)

    def tasks(self, status: str | None = None, limit: int | None = None, *, age: float | str | None = None,
              created_before_us: int | None = None, tag: str | None = None, assignee: str | None = None,
              id_prefix: str | None = None) -> Iterator[Task]:
        """The tasks `ids` names, oldest first, fetched CHUNK at a time: it
        never holds more than one chunk, however many tasks match. A task
        removed between the index read and the fetch is skipped.

        `tag` (a tag the task needs), `assignee` and `id_prefix` filter the
        tasks page by page as they are read; `limit` counts what passed. A
        tag no task can have (`open` refuses it) is BadInput, not "none"."""
        if tag is not None:
            checked(transitions.validate_tag, tag)
        if tag is None and assignee is None and id_prefix is None:
            return self.tasks_of(self.ids(status, limit=limit, age=age, created_before_us=created_before_us))
        _check_listing(status, limit)

        def wanted(task: Task) -> bool:
            return ((tag is None or tag in task.tags) and (assignee is None or task.assignee == assignee)
                    and (id_prefix is None or task.id.startswith(id_prefix)))
        found = filter(wanted, self.tasks_of(self.ids(status, age=age, created_before_us=created_before_us)))
        return found if limit is None else itertools.islice(found, limit)

    def tasks_of(self, ids: Iterable[str]) -> Iterator[Task]:
        """The tasks behind `ids`, lazily and in order; missing ones skipped."""
        store = self.store
        for batch in chunks(ids):
            found = store.get_tasks(batch)
            yield from (found[i] for i in batch if i in found)

    def listings_partial(self) -> str | None:
        """None when listings by status are whole as far as the store can
        tell; else why they may leave tasks out now (a Riak cluster that is
        catching up: a node down, or handing data back after it rejoined)."""
        return self.store.listings_partial()

    def stats(self) -> dict[str, Any]:
        """The figures of `riaktq stats`: counts per status, the oldest todo
        task's age, tasks finished lately, every instance (see stats.py)."""
        from riaktq_cli.api.figures import gather
        return gather(self.store, self.instance_timeout)

    def instances(self) -> list[dict[str, Any]]:
        """Every worker instance as `riaktq instances` shows it."""
        from riaktq_cli.store import published as scheduler_settings
        from riaktq_cli.api.figures import instance_rows
        timeout, _source = scheduler_settings.instance_timeout(self.store, self.instance_timeout)
        return instance_rows(self.store, timeout)

    @property
    def instance_timeout(self) -> float:
        """The config's scheduler.instance_timeout: judges instances until a
        running scheduler has published its own."""
        return 30.0 if self.config is None else self.config.get("scheduler", "instance_timeout")

    # --- changing ----------------------------------------------------------
    def requeue(self, ids: Iterable[str], *, retry: int = 0, status: str | None = None,
                dry_run: bool = False, priority: int | None = None) -> list[Outcome]:
        """Put finished tasks back to `todo` with `retry` restarts; one
        Outcome per id. A task not finished (or not `status`, if given) is
        left alone (WrongStatus); a missing one is NoSuchTask. The task keeps
        `out` until it runs again, and its priority unless `priority` is
        given. `dry_run` changes nothing. For very many ids, call it chunk
        by chunk (see `chunks`) to keep memory bounded."""
        retry = checked(transitions.check_int, retry, "retry", 0, transitions.RETRY_MAX)
        if priority is not None:
            priority = checked(transitions.check_int, priority, "priority", transitions.PRIORITY_MIN,
                               transitions.PRIORITY_MAX)
        if status is not None and status not in FINISHED:
            raise BadInput(f"status {status!r}: requeue takes done or failed")
        outcomes: list[Outcome] = []
        for batch in chunks(dict.fromkeys([ids] if isinstance(ids, str) else ids)):
            outcomes += self._requeue_batch(batch, retry, status, dry_run, priority)
        if not dry_run:
            self.hint_scheduler()
        return outcomes

    def _requeue_batch(self, batch: list[str], retry: int, status: str | None,
                       dry_run: bool, priority: int | None) -> list[Outcome]:
        def change(current: Task) -> Task | None:
            if not _wanted(current, status):
                return None
            new = transitions.requeue(current, retry)
            return new if priority is None else new.with_(priority=priority)

        def refusal(task_id: str, current: Task) -> RiaktqError | None:
            if dry_run and _wanted(current, status):
                return None
            return WrongStatus(task_id, current.status, status or " or ".join(FINISHED))
        return batch_outcomes(self.store, batch, change, dry_run, refusal)

    def purge(self, status: str, age: float | str, *, dry_run: bool = False,
              on_batch: Callable[[list[str]], None] | None = None) -> int:
        """Delete the tasks with `status` (done or failed) created at least
        `age` ago (seconds or "30d"); the number deleted (dry_run: that
        would be). Ids are read from the index a page at a time and deleted
        CHUNK at a time, so memory stays bounded at any size; `on_batch`
        gets each chunk's ids after it went. A task requeued meanwhile is
        left alone. The space comes back with `compact`."""
        if status not in FINISHED:
            raise BadInput(f"status {status!r}: purge takes done or failed")
        if age is None:
            raise BadInput("purge needs an age (0 for every task with that status)")
        before = created_before(age)  # fixed at the start: what finishes meanwhile stays
        removed = 0
        for batch in chunks(self.ids(status, created_before_us=before)):
            removed += len(batch) if dry_run else self.store.delete_tasks(batch, status)
            if on_batch is not None:
                on_batch(batch)
        return removed

    def compact(self) -> tuple[int, int] | None:
        """Give the store's free space back (SQLite: VACUUM and a truncating
        WAL checkpoint): (bytes before, bytes after), or None on a store
        with nothing to do (Riak)."""
        return self.store.compact()

    def rm(self, ids: Iterable[str]) -> list[Outcome]:
        """Remove tasks; one Outcome per id (NoSuchTask if it was not
        there). A task a worker is running still runs; its result is then
        dropped."""
        ids = [ids] if isinstance(ids, str) else ids
        store = self.store
        return [Outcome(i) if store.delete_task(i) else Outcome(i, None, NoSuchTask(i))
                for i in dict.fromkeys(ids)]


def _check_listing(status: str | None, limit: int | None) -> None:
    check_status(status)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadInput(f"limit must be a whole number of at least 0, not {limit!r}")


def _wanted(current: Task, status: str | None) -> bool:
    return current.status in FINISHED and (status is None or current.status == status)
