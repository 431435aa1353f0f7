"""What a call on many tasks reports, and how many ids meet the store.

`Outcome` is one task's result of `open_many`, `requeue`, `rm` or `cancel`;
`batch_outcomes` applies one change to a batch of tasks and says, per id,
what became of it; `chunks` cuts a stream of ids into the stores' batch size.
Both queue.py and control.py build on these, so neither imports the other.
"""

from __future__ import annotations

import itertools

from riaktq_cli.core.errors import NoSuchTask

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    from riaktq_cli.core.errors import RiaktqError
    from riaktq_cli.core.task import Task
    from riaktq_cli.store.base import Store

CHUNK = 500            # tasks read or changed per store call (the stores' own batch size)


class Outcome:
    """What became of one task in a call on many (`open_many`, `requeue`, `rm`).

    `ok` is True when the task was opened, requeued or removed; otherwise
    `error` says why not (TaskExists, NoSuchTask, WrongStatus, ...). `task` is
    the task as written (open_many, requeue), or as it is (a dry run)."""

    __slots__ = ("id", "task", "error")

    def __init__(self, id: str, task: Task | None = None, error: RiaktqError | None = None):
        self.id = id
        self.task = task
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        return f"Outcome({self.id!r}, {'ok' if self.ok else repr(self.error)})"


def chunks(iterable: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """Lists of up to `size` items: how a stream of ids meets the store."""
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def batch_outcomes(store: Store, batch: list[str], change: Callable[[Task], Task | None], dry_run: bool,
                   refusal: Callable[[str, Task], RiaktqError | None]) -> list[Outcome]:
    """Apply `change` to the tasks of `batch` (dry run: only read them); one
    Outcome per id: the task as written; NoSuchTask; else `refusal(id,
    task)` as the error, or the task as it is when that is None."""
    if dry_run:
        found, written = store.get_tasks(batch), {}
    else:
        found = {}

        def read_then_change(current: Task) -> Task | None:
            found[current.id] = current   # called once per task; threads write distinct keys
            return change(current)
        written = {new.id: new for _old, new in store.update_tasks(batch, read_then_change)}
    outcomes = []
    for task_id in batch:
        current = found.get(task_id)
        if task_id in written:
            outcomes.append(Outcome(task_id, written[task_id]))
        elif current is None:
            outcomes.append(Outcome(task_id, None, NoSuchTask(task_id)))
        else:
            outcomes.append(Outcome(task_id, current, refusal(task_id, current)))
    return outcomes
