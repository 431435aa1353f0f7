"""Loading an instance's inbox: an empty read is not believed while
something positive says the inbox exists.

The scheduler reads an inbox from the store only when it first meets the
instance (at start, after taking the lease over, or a new name); from then
on it keeps it in memory. A read that comes back empty used to start a
fresh inbox, written over the real one at the end of the iteration: its
pending entries were lost (their tasks rolled back, counted as an attempt,
as if the instance had lost them) and, if the worker took those entries
just before, the new ones re-used sequence numbers it treats as already
taken (so it never ran them). On Riak such a read is no proof: a GET can
come back "not found" from replicas that have not caught up after a node
rejoined.

So an empty read is doubted when something positive says there is an
inbox: the instance record says it has taken inbox entries (`taken` > 0),
or a nextup task names the instance while its record does not hold it
(the entry must be pending in the inbox). A doubted instance sits out the
iteration -- no inbox written, no new work, its results committed later,
its tasks not rolled back -- and the read is tried again at the next one.
After DOUBT_FOR seconds of empty reads the read is believed (the inbox
really is gone: a forget interrupted between its two deletes, or data
lost), and the fresh inbox starts at the sequence number the record, read
that late, shows taken: a live worker has written what it took by then.
An empty read with nothing to contradict it (a new instance) is believed
at once.
"""

import logging

from riaktq_cli import protocol
from riaktq_cli.clock import seconds_to_us
from riaktq_cli.store.base import INBOX

log = logging.getLogger("riaktq")

# How long empty reads of an inbox that should exist are retried before
# they are believed: a GET finds the key again once read repair or handoff
# has caught up (seconds, at most minutes).
DOUBT_FOR = 60.0


class InboxReads:
    """The scheduler's inbox loads, with the empty reads it doubts."""

    def __init__(self, store, doubt_for=DOUBT_FOR):
        self.store = store
        self.doubt_us = seconds_to_us(doubt_for)
        self._empty_since = {}   # name -> µs of the first empty read not believed

    def load(self, name, record, assigned, now):
        """The inbox of `name` (whose record is `record`), or None while an
        empty read is doubted: retry at a later iteration. `assigned`: ids
        of the nextup tasks that name it."""
        inbox = self.store.get_record(INBOX, name)
        if inbox is None:
            why = _exists_because(record, assigned)
            first = self._empty_since.setdefault(name, now) if why else now
            if why and now - first < self.doubt_us:
                if first == now:
                    log.warning("inbox of %s read empty, but %s: not believed; reading it again at the "
                                "next iterations (for up to %gs)", name, why, self.doubt_us / 1e6)
                return None
            if why:
                log.warning("inbox of %s still not found after %gs: starting it afresh above seq %d",
                            name, self.doubt_us / 1e6, record.get("taken", 0))
        elif self._empty_since.get(name) is not None:
            log.info("inbox of %s found on a later read", name)
        self._empty_since.pop(name, None)
        inbox = dict(protocol.empty_inbox(), **(inbox or {}))
        # `seq` never below what the instance took: a lost or reset inbox
        # must not re-use sequence numbers.
        inbox["seq"] = max([inbox["seq"], record.get("taken", 0)] + [e["seq"] for e in inbox["entries"]])
        return inbox

    def load_missing(self, inboxes, instances, expected, now):
        """Load into `inboxes` the inbox of each of `instances` not there
        yet; the names whose empty read is doubted (they sit out this
        iteration). `expected`: nextup task id -> assignee."""
        assigned = {}
        for task_id, name in expected.items():
            assigned.setdefault(name, set()).add(task_id)
        doubted = set()
        for name, record in instances.items():
            if name not in inboxes:
                inbox = self.load(name, record, assigned.get(name, ()), now)
                if inbox is None:
                    doubted.add(name)
                else:
                    inboxes[name] = inbox
        for name in [n for n in self._empty_since if n not in instances]:
            del self._empty_since[name]
        return doubted


def _exists_because(record, assigned):
    """Why an inbox must exist for this record, or None."""
    if record.get("taken", 0) > 0:
        return f"its record says it took up to seq {record['taken']}"
    missing = set(assigned) - protocol.held_task_ids(protocol.empty_inbox(), record)
    if missing:
        return f"{len(missing)} task(s) assigned to it are in no record"
    return None
