"""The scheduler's inboxes, kept in memory.

The scheduler is the only writer of `inbox/<name>` (protocol.py), so it
reads each inbox from the store once -- when it first meets the name after
taking the lease -- and from then on changes it in memory and writes only
the inboxes an iteration changed. A write that failed is tried again from
memory: a re-read would forget what was committed since. Whoever changes an
inbox says so (`changed`); the iteration writes them all at once (`write`).
"""

from riaktq_cli.records import Inbox
from riaktq_cli.store.base import INBOX


class Inboxes:
    """name -> Inbox, with the names changed since the last write."""

    def __init__(self, store):
        self.store = store
        self._inboxes = {}
        self._changed = set()
        self._unsaved = set()    # names whose last write failed

    def reset(self):
        """This process (again) holds the lease: another scheduler may have
        written the inboxes since, so read each again before using it."""
        self._inboxes.clear()
        self._changed.clear()
        self._unsaved.clear()

    def load(self, name, instance):
        """The inbox of `name`, read from the store the first time, with
        `seq` never below what the instance took (a lost or reset inbox must
        not re-use sequence numbers)."""
        inbox = self._inboxes.get(name)
        if inbox is None:
            inbox = Inbox.from_dict(self.store.get_record(INBOX, name))
            inbox.seq = max([inbox.seq, instance.taken] + [e.seq for e in inbox.entries])
            self._inboxes[name] = inbox
        return inbox

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

    def write(self, epoch, check_lease):
        """Store every changed inbox (and those whose last write failed),
        stamped with the lease `epoch`; `check_lease()` raises unless the
        lease is ours."""
        names = self._changed | self._unsaved
        if not names:
            return
        self._unsaved, self._changed = names, set()
        check_lease()
        for name in names:
            if name in self._inboxes:
                self._inboxes[name].epoch = epoch
        self.store.put_records(INBOX, {name: self._inboxes[name].to_dict() for name in names
                                       if name in self._inboxes})
        self._unsaved = set()

    def drop(self, names):
        """Forget the inboxes of `names` (records deleted, or gone from the
        store), except those with a change not stored yet."""
        for name in names:
            if not self.unsaved(name):
                self._inboxes.pop(name, None)
