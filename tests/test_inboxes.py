"""The scheduler's inboxes in memory (inboxes.py): a change is stored by the
next write that goes through, however many writes fail or are refused for
want of the lease in between; a read doubted stays out of memory."""

import pytest

from riaktq_cli.core.errors import StoreUnavailable
from riaktq_cli.scheduler.inbox_reads import InboxReads
from riaktq_cli.scheduler.inboxes import Inboxes
from riaktq_cli.scheduler.lease import LeaseLost
from riaktq_cli.core.records import Instance


class Flaky:
    """A store whose inbox writes fail while `down`."""

    def __init__(self, store):
        self.store, self.down = store, False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def put_records(self, kind, docs):
        if self.down:
            raise StoreUnavailable("down")
        self.store.put_records(kind, docs)


def refused():
    raise LeaseLost("not confirmed")


def test_a_change_is_stored_by_the_next_write_that_goes_through(store):
    store = Flaky(store)
    inboxes = Inboxes(store, InboxReads(store))
    assert inboxes.load_missing({"w": Instance("w", taken=4)}, {}, 0) == {"w"}   # it took from an inbox: doubted
    assert inboxes.names() == []
    assert inboxes.load_missing({"w": Instance("w")}, {}, 0) == set()            # a new instance
    inboxes["w"].seq += 1                    # as an assignment does
    inboxes.changed("w")
    with pytest.raises(LeaseLost):
        inboxes.write(3, refused)            # lease not confirmed: nothing written
    assert inboxes.unsaved("w") and store.get_record("inbox", "w") is None
    store.down = True
    with pytest.raises(StoreUnavailable):
        inboxes.write(3, lambda: None)
    inboxes.drop(["w"])                      # not while a change is unsaved
    store.down = False
    inboxes.write(3, lambda: None)           # nothing changed since: the old change goes out
    assert store.get_record("inbox", "w")["seq"] == 1 and store.get_record("inbox", "w")["epoch"] == 3
    assert not inboxes.unsaved("w")
    inboxes.drop(["w"])
    assert inboxes.names() == []
