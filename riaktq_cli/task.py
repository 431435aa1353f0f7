"""The task record and its transitions, as pure functions.

Every transition returns a new Task with `rev` one higher; the stores only
persist what these functions return, so the state machine lives in one
place and is the same on SQLite and Riak. See DESIGN.md section 1.
"""

import binascii

from riaktq_cli.errors import TransitionError

TODO, NEXTUP, DONE, FAILED = "todo", "nextup", "done", "failed"
STATUSES = (TODO, NEXTUP, DONE, FAILED)
FINISHED = (DONE, FAILED)
# How far along a status is; used to break `rev` ties when merging copies.
STATUS_RANK = {TODO: 0, NEXTUP: 1, DONE: 2, FAILED: 2}

MAX_ID_LENGTH = 200
# Bounds of the numbers a user gives. Priorities stay within ±2^53 (exact in
# JSON for every consumer, and far inside the int64 range SQLite and the Riak
# `todo_bin` term can order), and lowering one saturates at the floor.
PRIORITY_MIN, PRIORITY_MAX = -(2 ** 53), 2 ** 53
RETRY_MAX = 1000
ATTEMPTS_MAX = 1000
TIME_LIMIT_MAX = 366 * 86400.0  # seconds
FIELDS = ("id", "status", "priority", "retry", "assignee", "in_", "out", "sat", "laf", "cat", "tags", "rev",
          "run", "lost", "max_attempts", "time_limit", "cancel")


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
                 time_limit=None, cancel=None):
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
        # cancel: None, or the reason given to `riaktq cancel` ("" for none).
        # On a nextup task it asks the scheduler to withdraw or stop the run;
        # every way the run can end then ends the task failed "cancelled".
        self.cancel = cancel

    def _values(self):
        return (self.id, self.status, self.priority, self.retry, self.assignee, self.in_, self.out,
                self.sat, self.laf, self.cat, self.tags, self.rev, self.run, self.lost,
                self.max_attempts, self.time_limit, self.cancel)

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
        copy.run, copy.lost, copy.max_attempts, copy.time_limit, copy.cancel = \
            self.run, self.lost, self.max_attempts, self.time_limit, self.cancel
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
            "time_limit": self.time_limit, "cancel": self.cancel,
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
            cancel=rec.get("cancel"),
        )

    # --- human/JSON view (DESIGN: in/out as text when UTF-8) --------------
    def to_view(self):
        view = self.to_record()
        view["in"] = bytes_view(self.in_)
        view["out"] = None if self.out is None else bytes_view(self.out)
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


def validate_id(task_id):
    """Ids become Riak keys and index terms: keep them printable and bounded."""
    if not task_id or not isinstance(task_id, str):
        raise TransitionError("a task id must be a non-empty string")
    if len(task_id) > MAX_ID_LENGTH:
        raise TransitionError(f"task id longer than {MAX_ID_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in task_id):
        raise TransitionError(f"task id {task_id!r} contains whitespace or control characters")
    return task_id


def validate_tag(tag):
    # `;` separates the tag key from the order in the Riak `todotag_bin`
    # term, and control characters cannot travel in an HTTP header.
    if not tag or not isinstance(tag, str) or any(ch.isspace() or ch in ",;" or not ch.isprintable()
                                                  for ch in tag):
        raise TransitionError(f"bad tag {tag!r}: tags are non-empty words without spaces, commas or semicolons")
    return tag


def check_int(value, name, low, high):
    """A whole number within [low, high], or one clear TransitionError."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, bool) or float(value) != int(value):
                raise ValueError
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            raise TransitionError(f"{name} must be a whole number, not {value!r}") from None
    if not low <= value <= high:
        raise TransitionError(f"{name} {value} is out of range ({low} to {high})")
    return value


def check_time_limit(seconds):
    """None, or a positive number of seconds up to TIME_LIMIT_MAX."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= TIME_LIMIT_MAX:
        raise TransitionError(f"time limit {seconds!r} is out of range (above 0, up to 366 days)")
    return float(seconds)


def lowered(priority):
    """priority - 1, saturating at PRIORITY_MIN: a restart never overflows."""
    return max(PRIORITY_MIN, priority - 1)


# --- transitions -----------------------------------------------------------

def new_task(task_id, data, *, priority=0, retry=0, tags=(), now, max_attempts=None, time_limit=None):
    """open: a new `todo` task (the store refuses an existing id)."""
    validate_id(task_id)
    priority = check_int(priority, "priority", PRIORITY_MIN, PRIORITY_MAX)
    retry = check_int(retry, "retry", 0, RETRY_MAX)
    if max_attempts is not None:
        max_attempts = check_int(max_attempts, "max attempts", 1, ATTEMPTS_MAX)
    tags = tuple(sorted({validate_tag(t) for t in tags}))
    return Task(id=task_id, status=TODO, priority=priority, retry=retry,
                in_=bytes(data), cat=now, tags=tags, rev=1, max_attempts=max_attempts,
                time_limit=check_time_limit(time_limit))


def assign(task, instance):
    """todo → nextup on `instance`: run number `run + 1` starts."""
    if task.status != TODO:
        raise TransitionError(f"task {task.id} is {task.status}, not todo")
    return task.with_(status=NEXTUP, assignee=instance, run=task.run + 1)


def close(task, instance, status, out, sat, laf):
    """Finish a task run by `instance`; a failure with retries left restarts it.

    Returns (new_task, transition_name) where the name is "close" or
    "restart", so the scheduler can log which one happened.
    """
    if task.status != NEXTUP or task.assignee != instance:
        raise TransitionError(f"task {task.id} is not nextup on {instance}")
    if status not in FINISHED:
        raise TransitionError(f"cannot close with status {status!r}")
    if status == FAILED and task.cancel is not None:
        return cancelled(task, sat, laf)   # stopped by the cancel, or failed anyway: no restart
    if status == FAILED and task.retry > 0:
        return task.with_(status=TODO, retry=task.retry - 1, priority=lowered(task.priority),
                          assignee=None, out=out, sat=sat, laf=laf), "restart"
    return task.with_(status=status, out=out, sat=sat, laf=laf), "close"


def rollback(task, *, counted=False, default_max_attempts=3, why=None, sat=None, laf=None):
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
        return cancelled(task, sat, laf)   # withdrawn, handed back or lost: cancelled, not requeued
    ran = {} if sat is None else {"sat": sat, "laf": laf}
    if not counted:
        return task.with_(status=TODO, assignee=None), "rollback"
    lost = task.lost + 1
    bound = task.max_attempts or default_max_attempts
    if lost >= bound:
        reason = f"lost {lost} time{'s' if lost != 1 else ''}; last on instance {task.assignee}"
        if why:
            reason += f": {why}"
        return task.with_(status=FAILED, lost=lost, out=reason.encode(), **ran), "close"
    return task.with_(status=TODO, assignee=None, lost=lost, **ran), "rollback"


def requeue(task, retry=0):
    """done/failed → todo with a fresh retry count; `out` kept until it reruns."""
    if task.status not in FINISHED:
        raise TransitionError(f"task {task.id} is {task.status}, not finished")
    return task.with_(status=TODO, retry=check_int(retry, "retry", 0, RETRY_MAX), assignee=None, lost=0,
                      cancel=None)


def cancel(task, reason=""):
    """`riaktq cancel`: a todo task ends failed "cancelled: REASON" at once;
    a nextup task is only marked (`cancel` = reason): its instance holds the
    run, so the scheduler withdraws or stops it, and the run's end -- a
    result, a hand-back, a lost instance -- goes through `cancelled`.
    None for a nextup task already marked (nothing to write)."""
    if task.status == TODO:
        return task.with_(status=FAILED, out=cancel_output(reason), cancel=reason)
    if task.status == NEXTUP:
        return None if task.cancel is not None else task.with_(cancel=reason)
    raise TransitionError(f"task {task.id} is already {task.status}")


def cancelled(task, sat=None, laf=None):
    """The end of a run marked for cancellation: (failed task, "cancel")."""
    ran = {} if sat is None else {"sat": sat, "laf": laf}
    return task.with_(status=FAILED, out=cancel_output(task.cancel), **ran), "cancel"


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
