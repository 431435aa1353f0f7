"""What the scheduler last saw of each instance: never judge one lost from
a read that came back empty.

Every iteration lists the instance records (on Riak a 2i query). While a
Riak node rejoins and the cluster hands its data back, that listing can
leave records out for tens of seconds, and a GET routed through a node
that is stopping used to read as "not found"; the scheduler then took live
instances for lost and rolled their tasks back (run twice, or failed
"lost" at max_attempts). So absence from a listing proves nothing here:

- a name the scheduler knew from an earlier iteration, or that a nextup
  task names, and that the listing lacks, is read by key (one GET, and
  only in that case: a whole listing costs nothing extra);
- found: the record is used as if listed;
- not found either: what was last seen is kept, and the name is
  *shielded* -- none of its tasks is rolled back -- until it has gone
  unseen (listing and key read alike) for the instance timeout. Only then
  is it forgotten here and its tasks go the way of a lost instance's.

While shielded an instance is treated as alive for what it holds: its
pending inbox entries stay (scheduler._prune), whether or not its last
seen record has gone stale meanwhile -- withdrawn, they would never reach
a worker that lives. At the timeout it is gone, positively: for that one
iteration its last seen record is used as a lost instance's (`expired`),
so its entries are withdrawn and its tasks rolled back together, and the
runs it had not taken cost no attempt.

A name nothing depends on any more (no nextup task names it) is dropped
from memory at the first key read that misses it: the forgetter deleted
it, or `instances --forget` did.
"""

from riaktq_cli.store.base import INSTANCE


class Sightings:
    """The scheduler's memory of instance records, across iterations."""

    def __init__(self, store, timeout_us):
        self.store = store
        self.timeout_us = timeout_us
        self._last = {}      # name -> the record last seen (listed or read by key)
        self._unseen = {}    # name -> µs when a key read first missed it
        self.expired = set()  # names gone this iteration: unseen for the timeout, tasks to roll back

    def fill(self, listed, assignees, now):
        """(instances, shielded): the listing with the gaps filled (see the
        module docstring), and the names whose tasks must not be rolled
        back this iteration. `assignees`: the names nextup tasks hold."""
        instances = dict(listed)
        for name, record in listed.items():
            self._last[name] = record
            self._unseen.pop(name, None)
        shielded, self.expired = set(), set()
        for name in sorted((set(self._last) | set(assignees)) - set(listed)):
            record = self.store.get_record(INSTANCE, name)
            if record is not None:
                instances[name] = self._last[name] = record
                self._unseen.pop(name, None)
                continue
            first = self._unseen.setdefault(name, now)
            if name in assignees and now - first < self.timeout_us:
                shielded.add(name)
                if name in self._last:
                    instances[name] = self._last[name]
                continue
            if name in assignees and name in self._last:     # gone: treated as lost, once
                instances[name] = self._last[name]
                self.expired.add(name)
            self._last.pop(name, None)     # gone: unseen for the timeout, or needed by nothing
            self._unseen.pop(name, None)
        return instances, shielded

    def forget(self, names):
        """Names whose records the scheduler deleted itself."""
        for name in names:
            self._last.pop(name, None)
            self._unseen.pop(name, None)
