"""Forgetting instances: deleting the records of workers that are gone.

Every instance record is read by every iteration (a whole-kind index read
on Riak, whose answer grows with every record), and `instances` lists them
all; a worker that stopped or died long ago would cost that for ever. So
the scheduler deletes the `instance/<name>` and `inbox/<name>` records of
an instance that stopped cleanly, or has been lost, for longer than
`[scheduler] forget_after` (default 1d) -- but only once nothing of it is
left to do: no nextup task still names it (the rollback step has sent them
back) and every result in its outbox is listed committed in its inbox (the
commit step has applied them). What an iteration still has to do, it does
first; the next one forgets. So a forgotten instance never takes a result
or a task with it, and the iteration's reads stay proportional to the live
instances (plus those gone for less than forget_after).

The inbox goes first, then the record: a scheduler killed in between
leaves a record without an inbox, which the next one reads as an empty
inbox; its outbox then looks uncommitted, the commit recognizes those runs
as applied, lists them again, and the next sweep forgets it. Before
deleting, the record is read again: a worker that just restarted under the
name (a new token, a fresh heartbeat) keeps it. A forgotten worker that
was only paused and comes back simply registers again.

`riaktq instances --forget NAME` does the same by hand (`forget_by_hand`),
at once and whatever forget_after says, but refuses a live instance and one
whose results or tasks the scheduler has not dealt with yet.
"""

import logging

from riaktq_cli.core.clock import now_us, seconds_to_us
from riaktq_cli.core.errors import Refused
from riaktq_cli.core.records import STOPPED, Inbox, Instance
from riaktq_cli.store.base import INBOX, INSTANCE

log = logging.getLogger("riaktq")


def delete(store, name, record):
    """Inbox, then record, unless the record changed since `record` was read
    -- or cannot be read now: a read that comes back empty proves nothing
    (a node rejoining, say), and a worker that restarted under the name
    would lose its inbox."""
    again = store.get_record(INSTANCE, name)
    if again is None:
        return False
    again = Instance.from_dict(again, name)
    if (again.token, again.heartbeat) != (record.token, record.heartbeat):
        return False
    store.delete_record(INBOX, name)
    store.delete_record(INSTANCE, name)
    return True


class Forgetter:
    """The scheduler's sweep, once per iteration, over the records it read."""

    def __init__(self, store, forget_after, timeout_us):
        self.store = store
        self.after_us = seconds_to_us(forget_after)
        self.timeout_us = timeout_us

    def sweep(self, instances, inboxes, expected):
        """Forget what may go; drop from the scheduler's `inboxes`
        (inboxes.Inboxes) every name with no record any more. The names
        forgotten."""
        now = now_us()
        per_name = {}
        for assignee in expected.values():
            per_name[assignee] = per_name.get(assignee, 0) + 1
        forgotten = []
        for name, record in instances.items():
            gone = record.gone_for(now, self.timeout_us)
            if gone is None or gone < self.after_us or inboxes.unsaved(name):
                continue
            if record.uncommitted(inboxes.get(name)) or per_name.get(name, 0):
                continue
            if delete(self.store, name, record):
                log.info("forgot instance %s (%s %.0fs ago)", name,
                         "stopped" if record.status == STOPPED else "lost", gone / 1e6)
                forgotten.append(name)
        inboxes.drop([n for n in inboxes.names() if n not in instances or n in forgotten])
        return forgotten


def forget_by_hand(store, name, timeout_s):
    """`riaktq instances --forget NAME`: Refused (exit 1, one line) for a
    missing or live instance, or one the scheduler has not finished with."""
    record = store.get_record(INSTANCE, name)
    if record is None:
        raise Refused(f"no instance {name!r}")
    record = Instance.from_dict(record, name)
    if record.gone_for(now_us(), seconds_to_us(timeout_s)) is None:
        raise Refused(f"instance {name!r} is live (its heartbeat is fresh); stop it first")
    assigned = sum(1 for _, assignee in store.nextup_assignees() if assignee == name)
    results = len(record.uncommitted(Inbox.from_dict(store.get_record(INBOX, name))))
    if results or assigned:
        todo = " and ".join(x for x in (f"{results} result(s) to commit" if results else "",
                                        f"{assigned} task(s) to roll back" if assigned else "") if x)
        raise Refused(f"instance {name!r} still has {todo}: the scheduler does that at its next "
                      "iteration (is one running?); try again then")
    if not delete(store, name, record):
        raise Refused(f"instance {name!r} has just written its record again; not forgotten")
