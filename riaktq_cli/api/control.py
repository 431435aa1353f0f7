"""The Python API's controls of the queue: cancel, pause and resume, forget.

A base of `Queue` (queue.py), kept in a module of its own: a script gets
exactly what `riaktq cancel`, `pause`, `resume` and `instances --forget` do.

    with Queue.from_config() as q:
        q.cancel(["resize-42"], reason="wrong input")   # todo: failed now; nextup: stopped by the scheduler
        q.pause(tag="gpu")                              # tasks needing gpu wait
        q.resume()                                      # everything flows again
"""

from __future__ import annotations

from riaktq_cli.core import task as transitions
from riaktq_cli.api.inputs import created_before
from riaktq_cli.api.outcomes import batch_outcomes, chunks
from riaktq_cli.core.errors import AlreadyFinished, BadInput
from riaktq_cli.core.task import FINISHED, NEXTUP, TODO

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from riaktq_cli.api.outcomes import Outcome
    from riaktq_cli.core.errors import RiaktqError
    from riaktq_cli.core.task import Task

REASON_MAX = 1000


def check_reason(reason: str | None) -> str:
    """One printable line of at most REASON_MAX characters ("" for none)."""
    reason = "" if reason is None else reason
    if not isinstance(reason, str) or len(reason) > REASON_MAX or not reason.isprintable():
        raise BadInput(f"a cancel reason is one printable line of at most {REASON_MAX} characters")
    return reason


class Control:
    """cancel, cancel_where, pause, resume, pause_state, forget_instance.
    The Queue it is part of gives `store` and `hint_scheduler` (a wake-up
    hint after a change the scheduler acts on)."""

    def cancel(self, ids: Iterable[str], *, reason: str | None = "", dry_run: bool = False) -> list[Outcome]:
        """Cancel tasks; one Outcome per id, its `task` as written (or as it
        is: dry run, or nextup already marked).

        A todo task ends `failed`, out "cancelled: REASON", at once; a
        nextup task is marked, and the scheduler withdraws it from its
        instance's queue or stops its run (the task then ends the same way;
        `wait` for it). A finished task is AlreadyFinished, a missing one
        NoSuchTask. The write is checked against the stored revision, so a
        cancel that races the scheduler's assign still wins."""
        reason = check_reason(reason)
        outcomes: list[Outcome] = []
        for batch in chunks(dict.fromkeys([ids] if isinstance(ids, str) else ids)):
            outcomes += self._cancel_batch(batch, reason, dry_run)
        if not dry_run:
            self.hint_scheduler()   # a marked nextup task: the scheduler withdraws or stops it
        return outcomes

    def cancel_where(self, *, status: str | None = None, tag: str | None = None, age: float | str | None = None,
                     reason: str | None = "", dry_run: bool = False,
                     on_batch: Callable[[list[Outcome]], None] | None = None) -> int:
        """Cancel every unfinished task (or those with `status`: todo or
        nextup) that needs `tag` and was created at least `age` ago; the
        number cancelled (dry run: that would be). Read a page at a time,
        so memory stays bounded; `on_batch` gets each chunk's Outcomes."""
        if status not in (None, TODO, NEXTUP):
            raise BadInput(f"status {status!r}: cancel takes todo or nextup")
        reason, before = check_reason(reason), created_before(age)
        count = 0
        for st in ([status] if status else [TODO, NEXTUP]):
            for batch in chunks(t.id for t in self.tasks(st, created_before_us=before, tag=tag)):
                outcomes = [o for o in self._cancel_batch(batch, reason, dry_run) if o.ok]
                count += len(outcomes)
                if on_batch is not None:
                    on_batch(outcomes)
        if not dry_run:
            self.hint_scheduler()
        return count

    def _cancel_batch(self, batch: list[str], reason: str, dry_run: bool) -> list[Outcome]:
        def change(current: Task) -> Task | None:
            return None if current.status in FINISHED else transitions.cancel(current, reason)

        def refusal(task_id: str, current: Task) -> RiaktqError | None:
            return AlreadyFinished(task_id, current.status) if current.status in FINISHED else None
        return batch_outcomes(self.store, batch, change, dry_run, refusal)

    def pause(self, tag: str | None = None, *, timeout: float | str | None = None) -> dict[str, Any]:
        """Stop assigning tasks (all, or those needing `tag`); work in flight
        finishes. The state is kept in the store: it outlasts schedulers.

        Then waits (up to `timeout`, default pausing.APPLY_WAIT; 0: not at
        all) for the running scheduler to confirm it applied the pause.
        Returns the new state (pausing.read) with `applied` (True: nothing
        opened from now on is assigned against the pause), `applied_by`, and
        `scheduler`: the running scheduler, None when none holds the lease
        (the next one applies the pause before it assigns anything)."""
        from riaktq_cli.scheduler import pausing
        from riaktq_cli.api.inputs import seconds
        wait = seconds(timeout, "timeout")
        state = pausing.change(self.store, True, _tag(tag))
        self.hint_scheduler()   # it confirms sooner
        return pausing.await_applied(self.store, state, pausing.APPLY_WAIT if wait is None else wait)

    def resume(self, tag: str | None = None) -> dict[str, Any]:
        """Assign again: everything (no tag: paused tags too), or `tag`."""
        from riaktq_cli.scheduler import pausing
        state = pausing.change(self.store, False, _tag(tag))
        self.hint_scheduler()
        return state

    def pause_state(self) -> dict[str, Any] | None:
        """What is paused, and whether the running scheduler applied it; None
        when nothing is (pausing.view)."""
        from riaktq_cli.scheduler import pausing
        return pausing.view(self.store)

    def forget_instance(self, name: str) -> None:
        """Delete a stopped or lost instance's records now (forgetting.py);
        Refused (exit 1) for a live or missing one, or one whose results or
        tasks the scheduler has not dealt with yet."""
        from riaktq_cli.store import published as scheduler_settings
        from riaktq_cli.scheduler.forgetting import forget_by_hand
        timeout, _source = scheduler_settings.instance_timeout(self.store, self.instance_timeout)
        forget_by_hand(self.store, name, timeout)

    def limit(self, tag: str, *, concurrency: int | None = None, rate: str | None = None,
              clear: bool = False) -> dict[str, Any]:
        """Limit the tasks needing `tag` across every worker: at most
        `concurrency` assigned and unfinished at once, at most `rate`
        ("10/m", "5/2s") assigned per window; `clear` drops both. Kept in
        the store (limits.py): the scheduler applies it within a second.
        Returns {tag: {"concurrency", "rate"}} of every limit now set."""
        from riaktq_cli.scheduler import limits
        state = limits.change(self.store, _tag(tag or ""), concurrency=concurrency, rate=rate, clear=clear)
        return {t: {"concurrency": lim.concurrency, "rate": lim.rate_text()} for t, lim in state.tags.items()}

    def limits(self) -> list[dict[str, Any]]:
        """Each limited tag: concurrency, rate, in_flight (nextup tasks
        needing it), used (assigns in the current window), applied."""
        from riaktq_cli.scheduler import limits
        return limits.view(self.store)

    def schedules(self) -> list[dict[str, Any]]:
        """Each [[schedule]] of the config: its last slot, the task opened
        for it and that task's status, the next slot (schedules.py)."""
        from riaktq_cli.scheduler import schedules
        from riaktq_cli.core.clock import now_us
        return schedules.rows(self.store, self.config.schedules if self.config else [], now_us())


def _tag(tag: str | None) -> str | None:
    if tag is None:
        return None
    from riaktq_cli.api.inputs import checked
    return checked(transitions.validate_tag, tag)
