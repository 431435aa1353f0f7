"""The runner thread: feeds the handler process and keeps it in bounds.

The worker's main thread hands it inbox entries (`add`); the runner sends
them to the handler process in batches and collects one result per task as
it ends. It is the only thread that touches the handler process, so it
alone decides when a task has run too long (kill, `failed`, respawn), when
the process died under a task (`crashed`, respawn), and how a shutdown
ends (unstarted entries and a task stopped by the grace period come back
as `returned`). It waits in select() on the child's pipe and its own wake-up
pipe, so an idle runner costs nothing and a deadline is met to the
millisecond, whatever the store is doing in the main thread.
"""

import collections
import logging
import os
import select
import threading
import time

from riaktq_cli.core import protocol
from riaktq_cli.core.durations import format_duration
from riaktq_cli.core.errors import HandlerError, RiaktqError
from riaktq_cli.runtime.logs import info_line
from riaktq_cli.worker.cancel import CancelList
from riaktq_cli.worker.process import HandlerProcess, StartFailed, describe_exit
from riaktq_cli.worker.runner_state import (DRAINING, ENDED, ENDING, RUNNING, ChildStarts, Ending, HeadClock,
                                            LostOutput)

log = logging.getLogger("riaktq")

TICK = 1.0            # longest select(); `tick` is fresher than this while healthy


class RunnerFailed(RiaktqError):
    """The handler process cannot be kept running."""


class Runner:
    def __init__(self, name, spec, options, *, time_limit=None, wake_main=lambda: None):
        self.name = name
        self.spec = spec
        self.options = options
        self.time_limit = time_limit          # the worker's default, seconds or None
        self.wake_main = wake_main
        self.child = None
        self.tags = []
        self.error = None                     # why the thread ended, if it failed
        self.tick = time.monotonic()          # last sign of life of the thread
        self._lock = threading.Lock()
        self._pending = collections.deque()   # entries not sent to the child yet
        self._sent = collections.deque()      # (n, entry) sent, in order; the first is at hand
        self._results = []                    # protocol results for the main thread
        self._n = 0                           # the number of the last entry sent
        self._dropping = False                # a "drop" asked of the child, not yet answered
        self._head = HeadClock()              # when the task at hand started
        self._ending = Ending()               # running, draining, ending, ended
        self._cancels = CancelList()          # runs the scheduler cancelled (worker/cancel.py)
        self._starts = ChildStarts()          # handler processes that would not start
        self._lost = LostOutput()             # handler output lines the log could not take
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = None

    # --- the main thread's side ---------------------------------------------
    def start_child(self, cancelled=lambda: False):
        """Start the first handler process in the calling thread, so a bad
        handler is an error at start (HandlerError). False if cancelled."""
        if not self._spawn(cancelled):
            return False
        self.tags = list(self.child.tags)
        self._thread = threading.Thread(target=self._main, name=f"runner-{self.name}", daemon=True)
        self._thread.start()
        return True

    def add(self, entries):
        with self._lock:
            self._pending.extend(entries)
        self._wake()

    def stop(self, grace):
        """Take no more work; hand back what has not started; let the task
        at hand run up to `grace` seconds more."""
        with self._lock:
            self._ending.drain(grace)
        self._wake()

    def stop_now(self):
        with self._lock:
            self._ending.end_now()
        self._wake()

    def cancel(self, items):
        """The inbox's `cancel` list ([id, run, seq] items); main thread."""
        if self._cancels.replace(items):
            self._wake()

    def take_results(self):
        with self._lock:
            results, self._results = self._results, []
        return results

    def view(self):
        """(queue, current) for the instance record: entries not started,
        and the task at hand with its start time (µs) or None."""
        with self._lock:
            running = self._sent[0][1] if self._sent and self._head.sat is not None else None
            waiting = [e for _, e in list(self._sent)[1 if running else 0:]] + list(self._pending)
            return waiting, (running, self._head.sat) if running else None

    def backlog(self):
        """How many entries are waiting or at hand."""
        with self._lock:
            return len(self._pending) + len(self._sent)

    def settled(self):
        """Nothing waiting, nothing at hand, no result not yet taken."""
        with self._lock:
            return not (self._pending or self._sent or self._results)

    def output_lost(self):
        """Lines of handler output dropped because the log could not take them."""
        return self._lost.total

    def ended(self):
        return self._ending.mode == ENDED

    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout):
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self):
        """Stop at once (a worker that is exiting); kill the child."""
        self.stop_now()
        self.join(15)
        if self.child is not None and (self._thread is None or not self._thread.is_alive()):
            self.child.kill()

    def _wake(self):
        try:
            os.write(self._wake_w, b".")
        except BlockingIOError:
            pass

    # --- the runner thread ---------------------------------------------------
    def _main(self):
        try:
            self._serve()
        except BaseException as exc:  # noqa: B036 -- the worker must learn that its runner is gone
            self.error = exc
            if not isinstance(exc, RiaktqError):
                log.exception("%s: task runner failed", self.name)
        finally:
            if self.child is not None:
                self.child.kill()
            self._ending.mode = ENDED
            self.wake_main()

    def _serve(self):
        while True:
            self.tick = time.monotonic()
            self._apply_cancels()
            self._feed()
            if self.child is None:
                if not self._ending.running:
                    return self._end()
                if not self._spawn(lambda: not self._ending.running):
                    continue
            if not self._ending.running and not self._sent and not self._pending:
                return self._end()
            self.child.flush()
            timeout = self._next_deadline()
            wait_write = [self.child.write_fd] if self.child.pending_output() else []
            readable, _, _ = select.select([self.child.read_fd, self._wake_r], wait_write, [], timeout)
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            if self.child.read_fd in readable:
                self._receive()
            if self.child is not None:
                self._enforce_deadlines()

    def _end(self):
        if self.child is not None:
            self.child.kill()
            self.child = None
        self._return_all("stopped by shutdown")

    def _apply_cancels(self):
        """Act on the cancel list (worker/cancel.py's docstring says how)."""
        with self._lock:
            if not self._cancels:
                return
            unstarted = [e for e in self._pending if self._cancels.covers(e)]
            for entry in unstarted:
                self._pending.remove(entry)
            self._results.extend(_returned(e) for e in unstarted)
            sent = [e for _, e in self._sent]
        for entry in unstarted:
            info_line(f"{self.name} returned {entry['id']} (cancelled before it started)")
        if unstarted:
            self.wake_main()
        if sent and self._cancels.covers(sent[0]) and self._head.running:
            self._stop_head(protocol.make_result(sent[0], "failed", b"cancelled", self._head.sat,
                                                 self._head.elapsed_us()), "cancelled")
        elif any(self._cancels.covers(e) for e in sent[1:]) and not self._dropping and self.child is not None:
            self._dropping = True
            self.child.send(("drop",))

    def _feed(self):
        """Send waiting entries to the child (while running); on shutdown,
        hand back what the child has not got and ask it for the rest."""
        with self._lock:
            mode = self._ending.mode
            if mode == RUNNING:
                if not self._pending or self.child is None:
                    return
                batch = []
                while self._pending:
                    self._n += 1
                    entry = self._pending.popleft()
                    self._sent.append((self._n, entry))
                    batch.append((self._n, entry["id"], protocol.entry_input(entry), entry.get("tags", [])))
                if self._head.sat is None:
                    self._head.begin()
            else:
                returned = list(self._pending)
                self._pending.clear()
                self._results.extend(_returned(e) for e in returned)
        if mode == RUNNING:
            self.child.send(("run", batch))
            return
        for entry in returned:
            info_line(f"{self.name} returned {entry['id']} (not started)")
        if returned:
            self.wake_main()
        if mode == ENDING:
            if self.child is not None:
                self.child.kill()
                self.child = None
            self._return_all("stopped at once by a second signal")
        elif not self._dropping and self.child is not None and len(self._sent) > 1:
            self._dropping = True
            self.child.send(("drop",))

    def _next_deadline(self):
        now = time.monotonic()
        deadline = now + TICK
        limit = self._head_limit()
        if limit is not None:
            deadline = min(deadline, self._head.started + limit)
        if self._ending.mode == DRAINING and self._sent:
            deadline = min(deadline, self._ending.grace_until)
        return max(0.0, deadline - now)

    def _head_limit(self):
        if not self._sent or not self._head.running:
            return None
        own = self._sent[0][1].get("time_limit")
        return own if own is not None else self.time_limit

    def _receive(self):
        messages, eof = self.child.read()
        finished = []
        for message in messages:
            if message[0] == "result":
                finished.append(message)
            elif message[0] == "dropped":
                self._dropped(set(message[1]))
            elif message[0] == "output_lost":
                self._lost.child = message[1]
        if finished:
            self._finished(finished)
        if eof:
            self._child_died()

    def _finished(self, messages):
        results = []
        with self._lock:
            for _kind, n, status, out, sat, laf in messages:
                head_n, entry = self._sent.popleft()
                if head_n != n:  # cannot happen: the child runs in order
                    raise RunnerFailed(f"handler process answered task #{n}, expected #{head_n}")
                results.append((entry, protocol.make_result(entry, status, out, sat, laf)))
            if self._sent:
                self._head.begin()
            else:
                self._head.clear()
            first = not self._results
            self._results.extend(r for _, r in results)
            drained = not self._sent and not self._pending
        self._starts.worked()
        for entry, result in results:
            info_line(f"{self.name} {result['status']} {entry['id']} in {result['laf'] / 1e6:.3f}s",
                      task=entry["id"], status=result["status"])
        if first or drained:
            self.wake_main()

    def _dropped(self, numbers):
        with self._lock:
            kept = collections.deque((n, e) for n, e in self._sent if n not in numbers)
            returned = [e for n, e in self._sent if n in numbers]
            self._sent = kept
            if self._ending.running:  # dropped for a cancel: the others are sent again
                self._pending.extendleft(reversed([e for e in returned if not self._cancels.covers(e)]))
                returned = [e for e in returned if self._cancels.covers(e)]
                self._dropping = False
            self._results.extend(_returned(e) for e in returned)
        for entry in returned:
            info_line(f"{self.name} returned {entry['id']} (not started)")
        if returned:
            self.wake_main()

    def _enforce_deadlines(self):
        now = time.monotonic()
        limit = self._head_limit()
        if limit is not None and now >= self._head.started + limit:
            self._stop_head(protocol.make_result(
                self._sent[0][1], "failed", f"time limit {format_duration(limit)} exceeded".encode(),
                self._head.sat, self._head.elapsed_us(now)), "over its time limit")
        elif self._sent and self._ending.grace_over(now):
            self.child.kill()
            self.child = None
            self._return_all("stopped at the end of the shutdown grace period")

    def _stop_head(self, result, why):
        """Kill the child under the task at hand, which ends with `result`;
        the tasks sent after it go back to the front of the queue."""
        self.child.kill()
        self.child = None
        self._close_head(result, why)

    def _child_died(self):
        code = self.child.reap()
        self.child = None
        how = f"handler process died ({describe_exit(code)})"
        if not self._sent:
            self._starts.failed(how + " while idle")
            return
        entry = self._sent[0][1]
        self._close_head(protocol.make_result(entry, protocol.CRASHED, how.encode(), self._head.sat,
                                              self._head.elapsed_us()), how)

    def _close_head(self, result, why):
        with self._lock:
            _n, entry = self._sent.popleft()
            again = [e for _, e in self._sent]
            self._sent.clear()
            self._pending.extendleft(reversed(again))
            self._head.clear()
            self._results.append(result)
            self._dropping = False
        info_line(f"{self.name} {result['status']} {entry['id']} in {(result['laf'] or 0) / 1e6:.3f}s: {why}",
                  task=entry["id"], status=result["status"])
        self.wake_main()

    def _return_all(self, why):
        with self._lock:
            entries = [e for _, e in self._sent] + list(self._pending)
            self._sent.clear()
            self._pending.clear()
            self._head.clear()
            self._results.extend(_returned(e) for e in entries)
        for entry in entries:
            info_line(f"{self.name} returned {entry['id']} ({why})")
        if entries:
            self.wake_main()

    def _spawn(self, cancelled):
        """A new handler process. RunnerFailed once START_ATTEMPTS in a row
        died before doing any work (failed to load, or died while idle)."""
        def touched_or_cancelled():
            self._touch()
            return cancelled()

        while True:
            starts = self._starts
            if starts.failures:
                if starts.waits.exhausted:
                    raise RunnerFailed(f"handler process failed {starts.failures} times in a row:"
                                       f" {starts.last_failure}")
                log.warning("%s: %s; starting a new handler process", self.name, starts.last_failure)
                starts.waits.wait(touched_or_cancelled)
            self._lost.new_child()
            child = HandlerProcess(self.spec, self.options, self.name)
            try:
                started = child.start(cancelled, tick=self._touch)
            except HandlerError as exc:
                if self._thread is None:
                    raise  # at start: the user's handler does not load
                self._starts.failed(str(exc))
            except StartFailed as exc:
                self._starts.failed(str(exc))
            except OSError as exc:
                self._starts.failed(f"cannot start the handler process: {exc.strerror or exc}")
            else:
                if started:
                    self.child = child
                return started

    def _touch(self):
        self.tick = time.monotonic()


def _returned(entry):
    return protocol.make_result(entry, protocol.RETURNED, b"", None, None)
