"""Transition events: one log line each, a metric, and optionally JSON lines.

`--events FILE|-` gives scripts and tests an exact record of what the
scheduler did (`{"transition": "close", "id": ..., "task": {...}}`), written
and flushed line by line so a crash loses at most the line being written.
Every transition also counts in `riaktq_transitions_total` (a no-op unless
the scheduler serves metrics).
"""

import json
import sys

from riaktq_cli import metrics
from riaktq_cli.logs import info_line


class EventSink:
    def __init__(self, target=None):
        self._own = False
        if target is None:
            self._out = None
        elif target == "-":
            self._out = sys.stdout
        else:
            self._out = open(target, "a", encoding="utf-8")
            self._own = True

    def emit(self, transition, task, **extra):
        metrics.count_transition(transition)
        detail = f" on {task.assignee}" if task.assignee else ""
        if transition in ("close", "restart"):
            detail = f" {task.status}" + (f" (retries left {task.retry})" if transition == "restart" else "")
        info_line(f"{transition} {task.id}{detail}", task=task.id, transition=transition,
                  status=task.status, assignee=task.assignee or extra.get("instance"))
        if self._out is not None:
            record = {"transition": transition, "id": task.id, "task": task.to_view()}
            record.update(extra)
            self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._out.flush()

    def emit_raw(self, record):
        if self._out is not None:
            self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._out.flush()

    def close(self):
        if self._own:
            self._out.close()
