"""The scheduler's inboxes, kept in memory.

The scheduler is the only writer of `inbox/<name>` (protocol.py), so it
reads each inbox from the store once -- when it first meets the name after
taking the lease -- and from then on changes it in memory and writes only
the inboxes an iteration changed. A write that failed is tried again from
memory: a re-read would forget what was committed since. Whoever changes an
inbox says so (`changed`); the iteration writes them all at once (`write`).
"""

from riaktq_cli.store.base import INBOX


class Inboxes:
    """name -> Inbox, with the names changed since the last write."""

    def __init__(self, store, reads):
        self.store = store
        self.reads = reads       # inbox_reads.InboxReads: loads them, doubting empty reads
        self._inboxes = {}
        self._changed = set()
        self._unsaved = set()    # names whose last write failed

    def reset(self):
        """This process (again) holds the lease: another scheduler may have
        written the inboxes since, so read each again before using it."""
        self._inboxes.clear()
        self._changed.clear()
        self._unsaved.clear()

    def load_missing(self, instances, expected, now):
        """Read the inbox of each of `instances` (records.Instance by name)
        not in memory yet; the names whose empty read is doubted (they sit
        out this iteration). `expected`: nextup task id -> assignee."""
        assigned = {}
        for task_id, name in expected.items():
            assigned.setdefault(name, set()).add(task_id)
        doubted = set()
        for name, record in instances.items():
            if name not in self._inboxes:
                inbox = self.reads.load(name, record, assigned.get(name, ()), now)
                if inbox is None:
                    doubted.add(name)
                else:
                    self._inboxes[name] = inbox
        self.reads.forget_except(instances)
        return doubted

    def __getitem__(self, name):
        return self._inboxes[name]

    def get(self, name):
        return self._inboxes.get(name)

    def names(self):
        return list(self._inboxes)

    def changed(self, name):
        """`name`'s inbox changed in memory: the next `write` stores it."""
        self._changed.add(name)

    def unsaved(self, name):
        """Whether memory holds a change of `name`'s inbox the store does not."""
        return name in self._unsaved or name in self._changed

    def write(self, epoch, check_lease, hint=None):
        """Store every changed inbox (and those whose last write failed),
        stamped with the lease `epoch` and the address that takes the
        scheduler's wake-up hints (`hint`); `check_lease()` raises unless the
        lease is ours. Returns the names written."""
        names = self._changed | self._unsaved
        if not names:
            return set()
        self._unsaved, self._changed = names, set()
        check_lease()
        for name in names:
            if name in self._inboxes:
                self._inboxes[name].epoch = epoch
                self._inboxes[name].hint = hint
        self.store.put_records(INBOX, {name: self._inboxes[name].to_dict() for name in names
                                       if name in self._inboxes})
        self._unsaved = set()
        return names

    def drop(self, names):
        """Forget the inboxes of `names` (records deleted, or gone from the
        store), except those with a change not stored yet."""
        for name in names:
            if not self.unsaved(name):
                self._inboxes.pop(name, None)
