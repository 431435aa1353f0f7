"""A worker instance: runs the tasks the scheduler puts in its inbox.

All store I/O happens on the worker's main thread; the handler runs on a
second thread so the heartbeat keeps going during a long task. Results go
to the outbox in the instance record and stay there until the scheduler
lists them as committed, so neither a worker crash nor a scheduler crash
loses a finished result (DESIGN §2).
"""

import concurrent.futures
import logging
import os
import socket
import threading
import time
from collections import deque

from riaktq_cli import protocol
from riaktq_cli.clock import now_us
from riaktq_cli.errors import StoreError, StoreUnavailable
from riaktq_cli.store.base import INBOX, INSTANCE

log = logging.getLogger("riaktq")

# Finished results are written at most this often while more tasks are
# queued, so a burst of fast tasks costs one write per batch, not per task.
FLUSH_INTERVAL = 0.05


class Worker:
    def __init__(self, store, name, handler, *, tags=(), heartbeat=2.0, poll=0.5):
        self.store = store
        self.name = name
        self.handler = handler
        self.tags = sorted(set(tags) | set(handler.tags()))
        self.heartbeat = heartbeat
        self.poll = poll
        self.queue = deque()      # inbox entries taken, not started
        self.current = None       # (entry, sat µs, monotonic start, future)
        self.outbox = []
        self.taken = 0
        self.status = protocol.IDLE
        self._dirty = True
        self._last_write = 0.0
        self._last_poll = 0.0
        self._started = now_us()

    # --- the record --------------------------------------------------------
    def _record(self):
        current = None
        if self.current:
            entry, sat, _, _ = self.current
            current = {"id": entry["id"], "seq": entry["seq"], "since": sat}
        return {
            "name": self.name, "handler": self.handler.name, "tags": self.tags,
            "host": socket.gethostname(), "pid": os.getpid(), "started": self._started,
            "heartbeat": now_us(), "status": self.status, "taken": self.taken,
            "queue": [{"id": e["id"], "seq": e["seq"]} for e in self.queue],
            "current": current, "outbox": self.outbox,
        }

    def _write(self):
        self.store.put_record(INSTANCE, self.name, self._record())
        self._dirty = False
        self._last_write = time.monotonic()

    def _load(self):
        """Take over the outbox and inbox position of an earlier run under
        this name, so results it finished are still committed."""
        old = self.store.get_record(INSTANCE, self.name)
        if old:
            self.outbox = old.get("outbox", [])
            self.taken = old.get("taken", 0)

    # --- steps ---------------------------------------------------------------
    def _read_inbox(self, accept_new):
        inbox = self.store.get_record(INBOX, self.name) or protocol.empty_inbox()
        self._last_poll = time.monotonic()
        committed = {tuple(k) for k in inbox["committed"]}
        if committed:
            kept = [r for r in self.outbox if protocol.result_key(r) not in committed]
            if len(kept) != len(self.outbox):
                self.outbox = kept
                self._dirty = True
        if accept_new:
            fresh = sorted((e for e in inbox["entries"] if e["seq"] > self.taken), key=lambda e: e["seq"])
            if fresh:
                self.queue.extend(fresh)
                self.taken = fresh[-1]["seq"]
                self._dirty = True

    def _start_next(self, executor):
        entry = self.queue.popleft()
        sat = now_us()
        data = protocol.entry_input(entry)
        future = executor.submit(self.handler.run, entry["id"], data, entry["tags"])
        self.current = (entry, sat, time.monotonic(), future)
        self.status = protocol.BUSY
        self._dirty = True

    def _finish_current(self):
        entry, sat, started, future = self.current
        status, out = future.result()
        laf = int((time.monotonic() - started) * 1_000_000)
        self.outbox.append(protocol.make_result(entry, status, out, sat, laf))
        log.info("%s %s %s in %.3fs", self.name, status, entry["id"], laf / 1e6)
        self.current = None
        if not self.queue:
            self.status = protocol.IDLE
        self._dirty = True

    # --- the loop --------------------------------------------------------------
    def run(self, stop=None):
        """Work until `stop` is set; then finish the task at hand, write the
        outbox and mark the instance stopped (its queued tasks go back)."""
        stop = stop or threading.Event()
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"task-{self.name}")
        registered = False
        try:
            while True:
                try:
                    if not registered:
                        self._load()
                        self._write()
                        registered = True
                        log.info("worker %s up (handler %s, tags %s)", self.name, self.handler.name,
                                 ",".join(self.tags) or "-")
                    if self.current and self.current[3].done():
                        self._finish_current()
                    if stop.is_set() and self.current is None:
                        break
                    now = time.monotonic()
                    idle = self.current is None and not self.queue
                    if now - self._last_poll >= self.poll or (idle and self._dirty):
                        self._read_inbox(accept_new=not stop.is_set())
                    if self.current is None and self.queue and not stop.is_set():
                        self._start_next(executor)
                    now = time.monotonic()
                    due = now - self._last_write >= self.heartbeat
                    settled = self.current is None and not self.queue
                    if due or (self._dirty and (settled or now - self._last_write >= FLUSH_INTERVAL)):
                        self._write()
                except StoreError as exc:
                    log.warning("%s: store unavailable, retrying: %s", self.name, exc)
                    stop.wait(self.poll)
                    continue
                self._wait(stop)
            self._shutdown()
        finally:
            executor.shutdown(wait=True)

    def _wait(self, stop):
        now = time.monotonic()
        until = min(self._last_poll + self.poll, self._last_write + self.heartbeat)
        if self._dirty:
            until = min(until, self._last_write + FLUSH_INTERVAL)
        timeout = max(0.0, until - now)
        if self.current is not None:
            concurrent.futures.wait([self.current[3]], timeout=timeout)
        elif timeout > 0 and not (self.queue and not stop.is_set()):
            stop.wait(timeout)

    def _shutdown(self):
        """Write the outbox and the stopped status, retrying a while if the
        store is down: the outbox holds results nobody else has."""
        self.status = protocol.STOPPED
        self.queue.clear()
        deadline = time.monotonic() + max(10 * self.poll, 5.0)
        while True:
            try:
                self._write()
                log.info("worker %s stopped (%d result(s) waiting for commit)", self.name, len(self.outbox))
                return
            except StoreUnavailable as exc:
                if time.monotonic() > deadline:
                    log.error("worker %s: could not write its outbox: %s", self.name, exc)
                    raise
                time.sleep(self.poll)
