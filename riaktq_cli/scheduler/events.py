"""Transition events: one log line each, a metric, and optionally JSON lines.

`--events FILE|-` gives scripts and tests a record of what the scheduler
did: `{"transition": "close", "id": ..., "run": 2, "rev": 7, "task": {...}}`,
written and flushed line by line.

The promise is at least once: a scheduler emits an event after the task's
write has landed and before it tells the worker the result is committed,
and a scheduler that takes over emits again the closes whose results are
still in an outbox. A consumer drops repeats by (id, run, transition) or by
(id, rev).

A file that cannot be opened is an error at start (exit 2). A write that
fails later (disk full) is said once in the log; the lines wait in memory
(up to MAX_PENDING, then the oldest are dropped and counted) and go out
with the next write that succeeds, so scheduling never stops for it.
Every transition also counts in `riaktq_transitions_total` (a no-op unless
the scheduler serves metrics).
"""

import collections
import json
import logging
import sys

from riaktq_cli.runtime import instruments
from riaktq_cli.core.errors import ConfigError
from riaktq_cli.runtime.logs import info_line

log = logging.getLogger("riaktq")

MAX_PENDING = 100_000


class EventSink:
    def __init__(self, target=None):
        self._own = False
        self.target = target
        self._pending = collections.deque()
        self._dropped = 0
        self._failing = False
        if target is None:
            self._out = None
        elif target == "-":
            self._out = sys.stdout
        else:
            try:
                self._out = open(target, "a", encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"events file {target}: cannot write it ({exc.strerror or exc})") from None
            self._own = True

    def emit(self, transition, task, **extra):
        instruments.count_transition(transition)
        detail = f" on {task.assignee}" if task.assignee else ""
        if transition in ("close", "restart"):
            detail = f" {task.status}" + (f" (retries left {task.retry})" if transition == "restart" else "")
        info_line(f"{transition} {task.id}{detail}", task=task.id, transition=transition,
                  status=task.status, assignee=task.assignee or extra.get("instance"))
        if self._out is not None:
            record = {"transition": transition, "id": task.id, "run": task.run, "rev": task.rev,
                      "task": task.to_view()}
            record.update(extra)
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self._dropped += 1
            self._pending.append(json.dumps(record, ensure_ascii=False) + "\n")
            self._flush()

    def _flush(self):
        try:
            while self._pending:
                self._out.write(self._pending[0])
                self._out.flush()
                self._pending.popleft()
        except (OSError, ValueError) as exc:
            if not self._failing:
                self._failing = True
                log.error("events file %s: write failed (%s); keeping events in memory and retrying",
                          self.target, getattr(exc, "strerror", None) or exc)
            return
        if self._failing:
            self._failing = False
            lost = f", {self._dropped} dropped for lack of memory" if self._dropped else ""
            log.warning("events file %s: writing again%s", self.target, lost)
            self._dropped = 0

    def close(self):
        if self._out is not None and self._pending:
            self._flush()
        if self._own:
            try:
                self._out.close()
            except OSError:
                pass
