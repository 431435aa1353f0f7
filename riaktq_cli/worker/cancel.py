"""Stopping the runs the scheduler cancelled: the runner's side of `riaktq cancel`.

The worker's main thread hands the runner its inbox's `cancel` list
(`cancel`); the runner thread, woken at once, on its next turn:

- drops a listed entry not yet sent to the handler process: a `returned`
  result (it never started);
- kills the handler process under a listed run at hand -- the same kill as
  a time limit, so a sleeping or hung handler stops at once -- and reports
  it `failed`, out "cancelled";
- asks the handler process to drop its queue when a listed entry waits
  there; `Runner._dropped` hands that one back and sends the others again,
  in order.

The scheduler closes each of these failed "cancelled: REASON" (task.py).
A mixin of `Runner` (worker/runner.py), whose lock, queues and child it uses.
"""

import time

from riaktq_cli.core import protocol
from riaktq_cli.runtime.logs import info_line


class Cancelling:
    def cancel(self, items):
        """The inbox's `cancel` list ([id, run, seq] items); main thread."""
        keys = {tuple(item[:3]) for item in items}
        with self._lock:
            changed, self._cancel = keys != self._cancel, keys
        if changed and keys:
            self._wake()

    def _cancelled(self, entry):
        # [id, run, seq]: the seq tells a run of a task opened again under
        # the same id (whose run numbers start again) from the cancelled one
        return (entry["id"], entry.get("run", 0), entry["seq"]) in self._cancel

    def _apply_cancels(self):
        """Runner thread: act on the cancel list (see the module's docstring)."""
        with self._lock:
            if not self._cancel:
                return
            unstarted = [e for e in self._pending if self._cancelled(e)]
            for entry in unstarted:
                self._pending.remove(entry)
            self._results.extend(protocol.make_result(e, protocol.RETURNED, b"", None, None) for e in unstarted)
            sent = [e for _, e in self._sent]
        for entry in unstarted:
            info_line(f"{self.name} returned {entry['id']} (cancelled before it started)")
        if unstarted:
            self.wake_main()
        if sent and self._cancelled(sent[0]) and self._head_started is not None:
            laf = int((time.monotonic() - self._head_started) * 1e6)
            self._stop_head(protocol.make_result(sent[0], "failed", b"cancelled", self._head_sat, laf), "cancelled")
        elif any(self._cancelled(e) for e in sent[1:]) and not self._dropping and self.child is not None:
            self._dropping = True
            self.child.send(("drop",))
