"""A worker instance: runs the tasks the scheduler puts in its inbox.

Two threads. The main thread does all store I/O: it polls the inbox, hands
new entries to the runner, and writes the instance record (heartbeat,
queue, task at hand, outbox). The runner thread runs handlers back to back
from an in-memory queue, so a stream of fast tasks costs no thread hand-off
per task, and a long task never holds up the heartbeat.

Results go to the outbox in the instance record and stay there until the
scheduler lists them as committed, so neither a worker crash nor a
scheduler crash loses a finished result (DESIGN §2).
"""

import logging
import os
import socket
import threading
import time
from collections import deque

from riaktq_cli import protocol
from riaktq_cli.clock import now_us
from riaktq_cli.errors import StoreError
from riaktq_cli.logs import info_line
from riaktq_cli.store.base import INBOX, INSTANCE

log = logging.getLogger("riaktq")

# Finished results are written at most this often while more tasks are
# queued, so a burst of fast tasks costs one write per batch, not per task.
FLUSH_INTERVAL = 0.05
# Where the store can tell cheaply that someone wrote (SQLite), the worker
# looks this often and reads its inbox at once instead of waiting for `poll`.
WATCH_TICK = 0.01


class Worker:
    def __init__(self, store, name, handler, *, tags=(), heartbeat=2.0, poll=0.5):
        self.store = store
        self.name = name
        self.handler = handler
        self.tags = sorted(set(tags) | set(handler.tags()))
        self.heartbeat = heartbeat
        self.poll = poll
        self.outbox = []
        self.taken = 0
        self._started = now_us()
        # Shared with the runner thread, always under _lock: the queue of
        # entries not started, the task at hand, finished results not yet in
        # the outbox. One lock keeps "where is task X" consistent in every
        # record the main thread writes.
        self._lock = threading.Lock()
        self._pending = deque()
        self._running = None          # (entry, sat µs)
        self._results = deque()
        self._work = threading.Event()     # main → runner: entries queued (or closing)
        self._settled = threading.Event()  # runner → main: queue drained
        self._closing = False
        self._dirty = True
        self._last_write = 0.0
        self._last_poll = 0.0
        self._watch = False
        self._seen_version = None

    # --- the runner thread -------------------------------------------------
    def _runner(self):
        while True:
            with self._lock:
                entry = self._pending.popleft() if self._pending else None
                if entry is not None:
                    sat = now_us()
                    self._running = (entry, sat)
            if entry is None:
                if self._closing:
                    return
                self._work.wait()
                self._work.clear()
                continue
            started = time.monotonic()
            try:
                status, out = self.handler.run(entry["id"], protocol.entry_input(entry), entry["tags"])
            except Exception as exc:  # an entry we cannot even decode: fail it, keep running
                status, out = "failed", f"{type(exc).__name__}: {exc}".encode()
            laf = int((time.monotonic() - started) * 1_000_000)
            with self._lock:
                self._results.append(protocol.make_result(entry, status, out, sat, laf))
                self._running = None
                drained = not self._pending
            info_line(f"{self.name} {status} {entry['id']} in {laf / 1e6:.3f}s", task=entry["id"], status=status)
            if drained:
                self._settled.set()

    # --- the record ----------------------------------------------------------
    def _take_results(self):
        """Move finished results into the outbox; True when nothing is
        queued or running (the worker has settled)."""
        with self._lock:
            if self._results:
                self.outbox.extend(self._results)
                self._results.clear()
                self._dirty = True
            return not self._pending and self._running is None

    def _write(self, status=None):
        settled = self._take_results()
        with self._lock:
            queue = [{"id": e["id"], "seq": e["seq"]} for e in self._pending]
            running = self._running
        current = None if running is None else {"id": running[0]["id"], "seq": running[0]["seq"],
                                                "since": running[1]}
        status = status or (protocol.IDLE if settled else protocol.BUSY)
        self.store.put_record(INSTANCE, self.name, {
            "name": self.name, "handler": self.handler.name, "tags": self.tags,
            "host": socket.gethostname(), "pid": os.getpid(), "started": self._started,
            "heartbeat": now_us(), "status": status, "taken": self.taken,
            "queue": queue, "current": current, "outbox": self.outbox,
        })
        self._dirty = False
        self._last_write = time.monotonic()

    def _load(self):
        """Take over the outbox and inbox position of an earlier run under
        this name, so results it finished are still committed."""
        old = self.store.get_record(INSTANCE, self.name)
        if old:
            self.outbox = old.get("outbox", [])
            self.taken = old.get("taken", 0)

    def _inbox_may_have_changed(self):
        return self._watch and self.store.data_version() != self._seen_version

    def _read_inbox(self, accept_new):
        if self._watch:
            self._seen_version = self.store.data_version()
        inbox = self.store.get_record(INBOX, self.name) or protocol.empty_inbox()
        self._last_poll = time.monotonic()
        committed = {tuple(k) for k in inbox["committed"]}
        if committed:
            with self._lock:
                kept = [r for r in self.outbox if protocol.result_key(r) not in committed]
                if len(kept) != len(self.outbox):
                    self.outbox = kept
                    self._dirty = True
        if accept_new:
            fresh = sorted((e for e in inbox["entries"] if e["seq"] > self.taken), key=lambda e: e["seq"])
            if fresh:
                with self._lock:
                    self._pending.extend(fresh)
                self.taken = fresh[-1]["seq"]
                self._settled.clear()
                self._work.set()
                self._dirty = True

    # --- the main loop -----------------------------------------------------------
    def run(self, stop=None):
        """Work until `stop` is set; then finish the task at hand, write the
        outbox and mark the instance stopped (its queued tasks go back)."""
        stop = stop or threading.Event()
        runner = threading.Thread(target=self._runner, name=f"task-{self.name}", daemon=True)
        runner.start()
        registered = False
        try:
            while True:
                try:
                    if not registered:
                        self._load()
                        self._write()
                        self._watch = self.store.data_version() is not None
                        registered = True
                        log.info("worker %s up (handler %s, tags %s)", self.name, self.handler.name,
                                 ",".join(self.tags) or "-")
                    if stop.is_set() and self._stopped_running():
                        break
                    settled = self._take_results()
                    now = time.monotonic()
                    if now - self._last_poll >= self.poll or (settled and self._dirty) or \
                            self._inbox_may_have_changed():
                        self._read_inbox(accept_new=not stop.is_set())
                        settled = settled and not self._pending
                    now = time.monotonic()
                    if now - self._last_write >= self.heartbeat or \
                            (self._dirty and (settled or now - self._last_write >= FLUSH_INTERVAL)):
                        self._write()
                except StoreError as exc:
                    log.warning("%s: store unavailable, retrying: %s", self.name, exc)
                    stop.wait(self.poll)
                    continue
                self._wait(stop)
            self._shutdown()
        finally:
            self._closing = True
            self._work.set()
            runner.join(timeout=5)

    def _stopped_running(self):
        """On stop: drop the entries not started; True once nothing runs."""
        with self._lock:
            self._pending.clear()
            return self._running is None

    def _wait(self, stop):
        now = time.monotonic()
        until = min(self._last_poll + self.poll, self._last_write + self.heartbeat)
        if self._dirty:
            until = min(until, self._last_write + FLUSH_INTERVAL)
        if self._watch:
            until = min(until, now + WATCH_TICK)
        timeout = max(0.0, until - now)
        if stop.is_set():
            self._settled.wait(min(timeout, 0.05))
        elif timeout > 0:
            # Wake early when the runner drains its queue: then the results
            # go out and the inbox is read again at once.
            self._settled.wait(timeout)

    def _shutdown(self):
        """Write the outbox and the stopped status, retrying a while if the
        store is down: the outbox holds results nobody else has."""
        deadline = time.monotonic() + max(10 * self.poll, 5.0)
        while True:
            try:
                self._write(status=protocol.STOPPED)
                log.info("worker %s stopped (%d result(s) waiting for commit)", self.name, len(self.outbox))
                return
            except StoreError as exc:
                if time.monotonic() > deadline:
                    log.error("worker %s: could not write its outbox: %s", self.name, exc)
                    raise
                time.sleep(self.poll)
