"""Fault switches: failed, slowed and dropped requests, sibling storms,
a node that is stopping, and the handoff after a node rejoins.

The switches are set through `RiakTestServer` (or `/__test__/...`) and
taken by the request handler (`FaultsMixin`), thread-safely, mid-run.
The node and cluster states (`_Faults.stopping`, `Handoff`, `cluster_stats`)
hold no HTTP, so every front of the server honours them alike.
"""

from __future__ import annotations

import random
import socket
import threading
import time
import zlib


_FAULT_KINDS = frozenset({"get", "put", "delete", "index"})


class _Faults:
    """Fault switches of one node; every method is thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fail: list = []  # [[remaining, status, body, kinds]]
        self.slow: list = []  # [[remaining, seconds, after, kinds]]
        self.drop: list = []  # [[remaining, after, kinds]]
        self.storm = 0
        # riak_kv's routes removed (riak_kv_app:prep_stop): the node answers
        # webmachine's 404 page to every request, /ping and /stats included,
        # until it stops listening (RiakTestServer.stop_like_riak).
        self.stopping = False

    @staticmethod
    def _take(queue: list, kind: str):
        for entry in queue:
            kinds = entry[-1]
            if entry[0] > 0 and (kinds is None or kind in kinds):
                entry[0] -= 1
                if entry[0] == 0:
                    queue.remove(entry)
                return entry
        return None

    def take(self, kind: str):
        """(fail entry, slow entry, drop entry) that apply to this request."""
        with self.lock:
            return (self._take(self.fail, kind), self._take(self.slow, kind),
                    self._take(self.drop, kind))

    def take_storm(self) -> bool:
        with self.lock:
            if self.storm > 0:
                self.storm -= 1
                return True
            return False

    def clear(self) -> None:
        with self.lock:
            self.fail.clear()
            self.slow.clear()
            self.drop.clear()
            self.storm = 0
            self.stopping = False


class Handoff:
    """A node rejoined and the cluster hands its data back (cluster-wide).

    Real Riak: writes made while a node was down went to fallback vnodes;
    once it is back, its primaries serve coverage queries (2i, at r=1)
    before handoff has brought those writes home, so for a while 2i answers
    leave out keys written since the node went down -- those of the
    partitions a query happens to read from the rejoined node's replica:
    a coverage plan picks one replica per partition afresh for each query,
    so the counts wander (1,170, then 1,490 of 1,500 in the issue) while a
    GET (a quorum read) still finds every key.  Modelled: until ``until``,
    each 2i query reads each of RING partitions from the rejoined node with
    probability 1/``members`` (`coverage`), and leaves out the keys of
    those partitions (a hash of bucket and key) whose last write is at or
    after ``since``; the nodes' /stats show hinted handoffs in flight
    (`cluster_stats`).  With one node every partition is its own: all such
    keys are left out, which makes single-node tests deterministic.
    """

    RING = 8  # partitions, as the recorded cluster's ring

    def __init__(self, node: str, since: float, until: float, members: int):
        self.node, self.since, self.until = node, since, until
        self.members = max(1, members)
        self._rng = random.Random()

    def active(self) -> bool:
        return time.time() < self.until

    def coverage(self) -> frozenset:
        """The partitions one query reads from the rejoined node."""
        return frozenset(p for p in range(self.RING) if self._rng.random() * self.members < 1)

    def hides(self, bucket: str, key: str, written: float, covered: frozenset) -> bool:
        """Whether a 2i query with coverage ``covered`` leaves this key out."""
        if written < self.since or not self.active():
            return False
        return zlib.crc32(f"{bucket}/{key}".encode("utf-8", "surrogateescape")) % self.RING in covered


def cluster_stats(server) -> dict:
    """The /stats figures that say whether the cluster is settled, under
    real Riak's names: `ring_members` and `connected_nodes` (riak_core:
    the other members this node is connected to; a member missing there is
    down) and the handoffs in flight (`hinted_handoff_inbound_active_transfers`
    on the node receiving, `..._outbound_...` on the others)."""
    store = server.store
    members = list(store.nodes)
    handoff = store.handoff if store.handoff is not None and store.handoff.active() else None
    inbound = 1 if handoff is not None and handoff.node == server.node_name else 0
    outbound = 1 if handoff is not None and not inbound else 0
    return {
        "ring_members": sorted(n.node_name for n in members),
        "connected_nodes": sorted(n.node_name for n in members
                                  if n is not server and not n.is_down and not n._faults.stopping),
        "hinted_handoff_inbound_active_transfers": inbound,
        "hinted_handoff_outbound_active_transfers": outbound,
        "ownership_handoff_inbound_active_transfers": 0,
        "ownership_handoff_outbound_active_transfers": 0,
    }


class FaultsMixin:
    """The request handler's side of the fault switches."""

    # -- faults --------------------------------------------------------

    def _inject_before(self, kind: str) -> bool:
        """Apply the fault switches; True when the request was answered here.

        The "after" variants let the request be applied, then hold its answer
        (``_held``) to send it late or not at all: the write happened but the
        client cannot know -- the at-least-once case.
        """
        fail, slow, drop = self.riak._faults.take(kind)
        if slow:
            if slow[2]:
                self._after = ("slow", slow[1])
            else:
                self.riak._count("slowed")
                self.riak._stopping.wait(slow[1])
        if drop:
            if drop[1]:
                self._after = ("drop", None)
            else:
                self.riak._count("dropped")
                self._drop()
                return True
        if fail:
            self._send(fail[1], fail[2])
            return True
        if self._after is not None:
            self._held = []
        return False

    def _inject_after(self):
        after, held = self._after, self._held
        self._after = self._held = None
        if after is None:
            return
        if after[0] == "drop":
            self.riak._count("dropped")
            self._drop()
            return
        self.riak._count("slowed")
        self.riak._stopping.wait(after[1])
        for status, body, headers, ctype in held or []:
            self._send(status, body, headers, ctype)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _kinds(kinds):
    if kinds is None:
        return None
    kinds = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = kinds - _FAULT_KINDS
    if unknown:
        raise ValueError(f"unknown request kinds {sorted(unknown)}; use {sorted(_FAULT_KINDS)}")
    return kinds
