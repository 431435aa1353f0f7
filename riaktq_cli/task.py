"""The task record and its transitions, as pure functions.

Every transition returns a new Task with `rev` one higher; the stores only
persist what these functions return, so the state machine lives in one
place and is the same on SQLite and Riak. See DESIGN.md section 1.
"""

import binascii
import os

from riaktq_cli import history as hist
from riaktq_cli.errors import TransitionError
from riaktq_cli.task_checks import (ATTEMPTS_MAX, PRIORITY_MAX, PRIORITY_MIN, RETRY_MAX, check_int,
                                    check_retry_delay, check_time_limit, validate_id, validate_tag)

TODO, NEXTUP, DONE, FAILED = "todo", "nextup", "done", "failed"
STATUSES = (TODO, NEXTUP, DONE, FAILED)
FINISHED = (DONE, FAILED)
# How far along a status is; used to break `rev` ties when merging copies.
STATUS_RANK = {TODO: 0, NEXTUP: 1, DONE: 2, FAILED: 2}

FIELDS = ("id", "status", "priority", "retry", "assignee", "in_", "out", "sat", "laf", "cat", "tags", "rev",
          "run", "lost", "max_attempts", "time_limit", "due", "retry_delay", "history", "cancel", "inc")


class Task:
    """One task. Treat it as immutable: transitions return a new Task.

    A plain class with __slots__ rather than a dataclass: `dataclasses`
    pulls in `inspect`, which alone costs more start-up time than the rest
    of `riaktq open`; and the scheduler builds several Tasks per task it
    moves, so construction is kept to plain assignments.
    """

    __slots__ = FIELDS

    def __init__(self, id, status=TODO, priority=0, retry=0, assignee=None, in_=b"", out=None,
                 sat=None, laf=None, cat=0, tags=(), rev=0, run=0, lost=0, max_attempts=None,
                 time_limit=None, due=None, retry_delay=None, history=(), cancel=None, inc=None):
        self.id = id
        self.status = status
        self.priority = priority
        self.retry = retry
        self.assignee = assignee
        self.in_ = in_
        self.out = out
        self.sat = sat
        self.laf = laf
        self.cat = cat
        self.tags = tuple(tags)
        self.rev = rev
        # run: how many times the task was assigned; each assign starts run
        # number `run`, echoed in the inbox entry and in the result, so only
        # the result of the current run is ever committed.
        self.run = run
        # lost: runs that ended with their instance lost (not with a result);
        # bounded by max_attempts (None: the scheduler's default).
        self.lost = lost
        self.max_attempts = max_attempts
        # time_limit: seconds a run may take (None: the worker's default).
        self.time_limit = time_limit
        # due: a `todo` task is not assigned before this time (µs); None
        # once it is ready -- the scheduler clears it when the time comes
        # (delays.py), which moves the task into the todo order.
        self.due = due
        # retry_delay: seconds before the first restart (doubling per run;
        # None: the scheduler's default). history: recent transitions.
        self.retry_delay = retry_delay
        self.history = tuple(history)
        # cancel: None, or the reason given to `riaktq cancel` ("" for none).
        # On a nextup task it asks the scheduler to withdraw or stop the run;
        # every way the run can end then ends the task failed "cancelled".
        self.cancel = cancel
        # inc: the incarnation, a random stamp made at open. An id can be
        # removed and opened again while a run of the old task is under
        # way; entries and results carry the stamp, and a result commits
        # only to the incarnation it ran (None: a task opened before
        # stamps existed, matched by id and run as then).
        self.inc = inc

    def _values(self):
        return (self.id, self.status, self.priority, self.retry, self.assignee, self.in_, self.out,
                self.sat, self.laf, self.cat, self.tags, self.rev, self.run, self.lost,
                self.max_attempts, self.time_limit, self.due, self.retry_delay, self.history, self.cancel, self.inc)

    def __eq__(self, other):
        return isinstance(other, Task) and self._values() == other._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        return "Task(" + ", ".join(f"{f}={v!r}" for f, v in zip(FIELDS, self._values())) + ")"

    def with_(self, **changes):
        """A copy with `changes` applied and `rev` advanced by one."""
        copy = Task.__new__(Task)
        copy.id, copy.status, copy.priority, copy.retry = self.id, self.status, self.priority, self.retry
        copy.assignee, copy.in_, copy.out, copy.sat = self.assignee, self.in_, self.out, self.sat
        copy.laf, copy.cat, copy.tags = self.laf, self.cat, self.tags
        copy.run, copy.lost, copy.max_attempts, copy.time_limit = \
            self.run, self.lost, self.max_attempts, self.time_limit
        copy.due, copy.retry_delay, copy.history, copy.cancel = self.due, self.retry_delay, self.history, self.cancel
        copy.inc = self.inc
        for name, value in changes.items():
            setattr(copy, name, value)
        copy.rev = self.rev + 1
        return copy

    def matches(self, instance_tags):
        """True if an instance offering `instance_tags` may run this task."""
        return not self.tags or set(self.tags) <= set(instance_tags)

    # --- wire form: what both stores keep (JSON; bytes as base64) ---------
    def to_record(self):
        return {
            "id": self.id, "status": self.status, "priority": self.priority,
            "retry": self.retry, "assignee": self.assignee,
            "in": b64(self.in_),
            "out": None if self.out is None else b64(self.out),
            "sat": self.sat, "laf": self.laf, "cat": self.cat,
            "tags": list(self.tags), "rev": self.rev,
            "run": self.run, "lost": self.lost, "max_attempts": self.max_attempts,
            "time_limit": self.time_limit, "due": self.due, "retry_delay": self.retry_delay,
            "history": hist.to_record(self.history), "cancel": self.cancel, "inc": self.inc,
        }

    @classmethod
    def from_record(cls, rec):
        out = rec.get("out")
        return cls(
            id=rec["id"], status=rec["status"], priority=int(rec["priority"]),
            retry=int(rec["retry"]), assignee=rec.get("assignee"),
            in_=unb64(rec.get("in") or ""),
            out=None if out is None else unb64(out),
            sat=rec.get("sat"), laf=rec.get("laf"), cat=int(rec["cat"]),
            tags=tuple(rec.get("tags") or ()), rev=int(rec.get("rev", 0)),
            run=int(rec.get("run") or 0), lost=int(rec.get("lost") or 0),
            max_attempts=rec.get("max_attempts"), time_limit=rec.get("time_limit"),
            due=rec.get("due"), retry_delay=rec.get("retry_delay"),
            history=hist.from_record(rec.get("history")), cancel=rec.get("cancel"), inc=rec.get("inc"),
        )

    # --- human/JSON view (DESIGN: in/out as text when UTF-8) --------------
    def to_view(self, history=False):
        """The JSON view; the history only when asked (`get --history`):
        listings and events stay as small as they were."""
        view = self.to_record()
        view["in"] = bytes_view(self.in_)
        view["out"] = None if self.out is None else bytes_view(self.out)
        if history:
            view["history"] = hist.view(self.history)
        else:
            del view["history"]
        return view


def b64(data):
    """Standard base64 text. binascii rather than the base64 module, which
    imports re and costs `riaktq open` a few milliseconds."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(text):
    return binascii.a2b_base64(text)


def bytes_view(data):
    """UTF-8 text when the bytes decode, else {"base64": ...}: lossless JSON."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": b64(data)}


def view_to_bytes(value):
    """Inverse of bytes_view, for JSON input such as `open --batch`."""
    if value is None:
        return b""
    if isinstance(value, dict) and set(value) == {"base64"}:
        import base64
        return base64.b64decode(value["base64"], validate=True)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError('"in" must be a string or {"base64": "..."}')


def task_json(task):
    import json
    return json.dumps(task.to_view(), ensure_ascii=False)


def lowered(priority):
    """priority - 1, saturating at PRIORITY_MIN: a restart never overflows."""
    return max(PRIORITY_MIN, priority - 1)


# --- transitions -----------------------------------------------------------

def _now(now):
    if now is not None:
        return now
    from riaktq_cli.clock import now_us
    return now_us()


def ended_at(task):
    """When a finished task ended (µs), for "closed in the last hour": the
    time of the transition that finished it -- a finished task's last
    history entry -- which a task cancelled while todo or failed by loss
    has too, though it has no run times (`sat`/`laf`) of its own, or only
    stale ones of an earlier run. A record made before history: its run's
    end, sat + laf. None if it has neither. The stores index the same
    value (SQLite: tasks_ended; Riak: finished_bin)."""
    if task.history:
        return task.history[-1][0]
    if task.sat is not None and task.laf is not None:
        return task.sat + task.laf
    return None


def _noted(task, now, kind, instance, reason=None, **changes):
    """task.with_(**changes) with the transition in its history; `run` is
    the run the transition concerns (after an assign: the new one)."""
    run = changes.get("run", task.run)
    return task.with_(history=hist.appended(task.history, _now(now), kind, instance, run, reason), **changes)


def new_task(task_id, data, *, priority=0, retry=0, tags=(), now, max_attempts=None, time_limit=None,
             due=None, retry_delay=None):
    """open: a new `todo` task (the store refuses an existing id); with a
    `due` time (µs) still to come, it waits until then."""
    validate_id(task_id)
    priority = check_int(priority, "priority", PRIORITY_MIN, PRIORITY_MAX)
    retry = check_int(retry, "retry", 0, RETRY_MAX)
    if max_attempts is not None:
        max_attempts = check_int(max_attempts, "max attempts", 1, ATTEMPTS_MAX)
    tags = tuple(sorted({validate_tag(t) for t in tags}))
    return Task(id=task_id, status=TODO, priority=priority, retry=retry,
                in_=bytes(data), cat=now, tags=tags, rev=1, max_attempts=max_attempts,
                time_limit=check_time_limit(time_limit), due=due if due is not None and due > now else None,
                retry_delay=check_retry_delay(retry_delay), inc=new_incarnation())


def new_incarnation():
    """A stamp for one incarnation of a task id (see Task.inc): 64 random
    bits, so an id opened again never carries the stamp of its last life."""
    return binascii.b2a_hex(os.urandom(8)).decode("ascii")


def ready(task):
    """True for a `todo` task that may be assigned now (not waiting for its due time)."""
    return task.status == TODO and task.due is None


def release(task, now):
    """A waiting task whose due time has come becomes ready (None: not yet,
    or no longer waiting). Not a transition of the history: the assign
    that follows is."""
    if task.status != TODO or task.due is None or task.due > now:
        return None
    return task.with_(due=None)


def assign(task, instance, now=None):
    """todo → nextup on `instance`: run number `run + 1` starts."""
    if not ready(task):
        raise TransitionError(f"task {task.id} is {task.status}" + (", not due yet" if task.due else ", not todo"))
    return _noted(task, now, "assign", instance, status=NEXTUP, assignee=instance, run=task.run + 1)


def close(task, instance, status, out, sat, laf, now=None, delay_us=0):
    """Finish a task run by `instance`; a failure with retries left restarts it,
    due `delay_us` from now (the back-off, see delays.py).

    Returns (new_task, transition_name) where the name is "close" or
    "restart", so the scheduler can log which one happened.
    """
    if task.status != NEXTUP or task.assignee != instance:
        raise TransitionError(f"task {task.id} is not nextup on {instance}")
    if status not in FINISHED:
        raise TransitionError(f"cannot close with status {status!r}")
    now = _now(now)
    if status == FAILED and task.cancel is not None:
        return cancelled(task, sat, laf, now)   # stopped by the cancel, or failed anyway: no restart
    if status == FAILED and task.retry > 0:
        return _noted(task, now, "restart", instance, out, status=TODO, retry=task.retry - 1,
                      priority=lowered(task.priority), assignee=None, out=out, sat=sat, laf=laf,
                      due=now + delay_us if delay_us > 0 else None), "restart"
    reason = status if status == DONE or not out else f"{status}: {out.decode('utf-8', 'replace')}"
    return _noted(task, now, "close", instance, reason, status=status, out=out, sat=sat, laf=laf), "close"


def rollback(task, *, counted=False, default_max_attempts=3, why=None, sat=None, laf=None, now=None):
    """nextup → todo: the run ended without a result.

    `counted` says the run was under way when its instance was lost (as
    opposed to a task handed back unstarted, or stopped by a shutdown's
    grace period): such runs are bounded by `max_attempts` (the task's own,
    else `default_max_attempts`); the last one ends the task `failed` with
    the reason in `out` (`why` adds how the last run ended; `sat`/`laf`,
    when the worker reported them, record when that run ran). Returns (new_task, transition_name): "rollback" or
    "close" for that last one.
    """
    if task.status != NEXTUP:
        raise TransitionError(f"task {task.id} is {task.status}, not nextup")
    if task.cancel is not None:
        return cancelled(task, sat, laf, now)   # withdrawn, handed back or lost: cancelled, not requeued
    ran = {} if sat is None else {"sat": sat, "laf": laf}
    if not counted:
        return _noted(task, now, "rollback", task.assignee, why or "handed back", status=TODO,
                      assignee=None), "rollback"
    lost = task.lost + 1
    bound = task.max_attempts or default_max_attempts
    if lost >= bound:
        reason = f"lost {lost} time{'s' if lost != 1 else ''}; last on instance {task.assignee}"
        if why:
            reason += f": {why}"
        return _noted(task, now, "close", task.assignee, reason, status=FAILED, lost=lost,
                      out=reason.encode(), **ran), "close"
    return _noted(task, now, "rollback", task.assignee, why or "run lost", status=TODO, assignee=None,
                  lost=lost, **ran), "rollback"


def requeue(task, retry=0, now=None):
    """done/failed → todo with a fresh retry count; `out` kept until it reruns."""
    if task.status not in FINISHED:
        raise TransitionError(f"task {task.id} is {task.status}, not finished")
    return _noted(task, now, "requeue", None, f"was {task.status}", status=TODO,
                  retry=check_int(retry, "retry", 0, RETRY_MAX), assignee=None, lost=0, due=None, cancel=None)


def cancel(task, reason="", now=None):
    """`riaktq cancel`: a todo task ends failed "cancelled: REASON" at once;
    a nextup task is only marked (`cancel` = reason): its instance holds the
    run, so the scheduler withdraws or stops it, and the run's end -- a
    result, a hand-back, a lost instance -- goes through `cancelled`.
    None for a nextup task already marked (nothing to write)."""
    if task.status == TODO:
        return _noted(task, now, "cancel", None, reason or None, status=FAILED, out=cancel_output(reason),
                      cancel=reason, due=None)
    if task.status == NEXTUP:
        return None if task.cancel is not None else task.with_(cancel=reason)
    raise TransitionError(f"task {task.id} is already {task.status}")


def cancelled(task, sat=None, laf=None, now=None):
    """The end of a run marked for cancellation: (failed task, "cancel")."""
    ran = {} if sat is None else {"sat": sat, "laf": laf}
    return _noted(task, now, "cancel", task.assignee, task.cancel or None, status=FAILED,
                  out=cancel_output(task.cancel), **ran), "cancel"


def cancel_output(reason):
    return f"cancelled: {reason}".encode() if reason else b"cancelled"


def merge(copies):
    """Pick one task from conflicting copies (Riak siblings).

    Highest `rev` wins; ties go to the further status (done/failed over
    nextup over todo), then to the larger serialized value, so every reader
    picks the same copy without talking to the others.
    """
    import json
    return max(copies, key=lambda t: (t.rev, STATUS_RANK[t.status],
                                      json.dumps(t.to_record(), sort_keys=True)))


def assignment_order(task):
    """Sort key of DESIGN's order: priority desc, then cat asc, then id."""
    return (-task.priority, task.cat, task.id)
