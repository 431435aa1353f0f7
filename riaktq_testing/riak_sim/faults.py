"""Fault switches: failed, slowed and dropped requests, sibling storms.

The switches are set through `RiakTestServer` (or `/__test__/...`) and
taken by the request handler (`FaultsMixin`), thread-safely, mid-run."""

from __future__ import annotations

import socket
import threading


_FAULT_KINDS = frozenset({"get", "put", "delete", "index"})


class _Faults:
    """Fault switches of one node; every method is thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fail: list = []  # [[remaining, status, body, kinds]]
        self.slow: list = []  # [[remaining, seconds, after, kinds]]
        self.drop: list = []  # [[remaining, after, kinds]]
        self.storm = 0

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
