"""Stopping the runs the scheduler cancelled: the runner's side of `riaktq cancel`.

The worker's main thread hands the runner its inbox's `cancel` list
(`Runner.cancel`); the runner keeps it in a `CancelList` (this module) and,
woken at once, on its next turn (`Runner._apply_cancels`):

- drops a listed entry not yet sent to the handler process: a `returned`
  result (it never started);
- kills the handler process under a listed run at hand -- the same kill as
  a time limit, so a sleeping or hung handler stops at once -- and reports
  it `failed`, out "cancelled";
- asks the handler process to drop its queue when a listed entry waits
  there; `Runner._dropped` hands that one back and sends the others again,
  in order.

The scheduler closes each of these failed "cancelled: REASON" (task.py).
The list owns its state and its lock; the runner asks it which entries it
covers and acts on its own queues.
"""

import threading


class CancelList:
    """The runs the scheduler cancelled, as (id, run, seq): the seq tells a
    run of a task opened again under the same id (whose run numbers start
    again) from the cancelled one. Set by the main thread, read by the
    runner thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._keys = frozenset()

    def replace(self, items):
        """The inbox's `cancel` list ([id, run, seq] items); True when it
        changed and is not empty (the runner has work to do)."""
        keys = frozenset(tuple(item[:3]) for item in items)
        with self._lock:
            changed, self._keys = keys != self._keys, keys
        return changed and bool(keys)

    def __bool__(self):
        return bool(self._keys)

    def covers(self, entry):
        return (entry["id"], entry.get("run", 0), entry["seq"]) in self._keys
