"""When a task is due: delayed opens, retry back-off, and releasing due tasks.

A task with a due time still to come waits *outside* the todo order: on
SQLite it is in the partial index `tasks_waiting` and in neither todo-order
index; on Riak it carries `due_bin` instead of `todo_bin`/`todotag_bin`. So
the scheduler's assignment scan never meets a waiting task, and a backlog of
delayed tasks costs it nothing however long. When the time comes the
scheduler clears the task's `due` (task.release, one write per task), which
puts it in the todo order, where priority decides as for any other.

The scheduler asks the store which tasks have come due (`store.due_tasks`,
two small index range queries) only when the earliest due time it knows has
passed, or RECHECK seconds after it last looked: tasks delayed by other
processes (`open --delay`) are unknown to it until it looks, restarts with
a back-off are its own doing and known at once. Nothing is kept only in
memory: a scheduler that takes over (or restarts after kill -9) starts by
looking.
"""

import _thread
import time

from riaktq_cli.core.errors import BadInput

RECHECK = 1.0       # seconds: the longest a task delayed by another process waits past its due time
BATCH = 200         # due tasks released per iteration at most (the rest: next iteration)
UNKNOWN, NONE = None, float("inf")


def parse_at(text):
    """µs since the epoch of an ISO 8601 time with a timezone
    (`2026-12-01T06:00:00Z`, `...+02:00`); BadInput (one line) if not."""
    from datetime import datetime
    if not isinstance(text, str):
        raise BadInput(f"--at {text!r}: expected an ISO 8601 time with a timezone, e.g. 2026-12-01T06:00:00Z")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"--at {text!r}: not an ISO 8601 time; e.g. 2026-12-01T06:00:00Z") from None
    if moment.tzinfo is None:
        raise BadInput(f"--at {text!r}: give a timezone (Z for UTC, or +02:00)")
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def due_time(delay, at, now):
    """The due time (µs) of a task opened at `now` with `delay` (seconds)
    or `at` (ISO text, or µs); None when neither is given."""
    if delay is not None and at is not None:
        raise BadInput("give --delay or --at, not both")
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise BadInput(f"delay {delay!r} is negative or not a number of seconds")
        return now + int(delay * 1_000_000)
    if at is None:
        return None
    if isinstance(at, int) and not isinstance(at, bool):
        return at
    return parse_at(at)


def backoff_us(task, default, maximum):
    """The wait (µs) before a task restarts after its run number `run`
    failed: its own retry_delay (else the scheduler's `default`) doubled
    per run before this one, at most `maximum` seconds. Runs, not restarts:
    a run lost with its instance counts too (the issue's "per attempt"),
    and a requeued task resumes where its back-off was (still capped)."""
    base = default if task.retry_delay is None else task.retry_delay
    if base <= 0:
        return 0
    doublings = min(max(task.run - 1, 0), 64)
    return int(min(base * 2 ** doublings, max(maximum, base)) * 1_000_000)


class DueWatch:
    """The scheduler's side: back-off times, and releasing due tasks."""

    def __init__(self, store, retry_delay=0.0, retry_delay_max=3600.0, recheck=RECHECK):
        self.store = store
        self.retry_delay, self.retry_delay_max, self.recheck = retry_delay, retry_delay_max, recheck
        self.next_due = UNKNOWN   # earliest due time known (µs); NONE: nothing waits
        self.looked = None        # monotonic time of the last look
        self._lock = _thread.allocate_lock()   # restart_delay_us runs in the store's threads

    def restart_delay_us(self, task, status, now):
        """The back-off (µs) if closing `task` with `status` restarts it,
        else 0 (for close(..., delay_us=...)); the watch then knows when to
        look for it again."""
        if status != "failed" or task.retry <= 0:
            return 0
        delay = backoff_us(task, self.retry_delay, self.retry_delay_max)
        with self._lock:
            if delay and (self.next_due is UNKNOWN or now + delay < self.next_due):
                self.next_due = now + delay
        return delay

    def release(self, now, update):
        """Clear the due time of tasks that have come due, BATCH at most;
        `update(ids, change, step)` writes (the scheduler's, under its
        lease). Returns how many were released."""
        moment = time.monotonic()
        fresh = self.looked is not None and moment - self.looked < self.recheck
        if fresh and self.next_due is not UNKNOWN and now < self.next_due:
            return 0
        self.looked = moment
        due = self.store.due_tasks(0, now, BATCH)
        if len(due) == BATCH:
            self.next_due = now          # more than a batch came due: go on next iteration
        else:
            later = self.store.due_tasks(now + 1, None, 1)
            self.next_due = later[0][0] if later else NONE
        if not due:
            return 0
        written, failed = update([task_id for _, task_id in due], _releaser(now), "release")
        if failed:
            self.next_due = now
        return len(written)


def _releaser(now):
    from riaktq_cli.core.task import release
    return lambda task: release(task, now)
