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
FIELDS = ("id", "status", "priority", "retry", "assignee", "in_", "out", "sat", "laf", "cat", "tags", "rev")


class Task:
    """One task. Treat it as immutable: transitions return a new Task.

    A plain class with __slots__ rather than a dataclass: `dataclasses`
    pulls in `inspect`, which alone costs more start-up time than the rest
    of `riaktq open`; and the scheduler builds several Tasks per task it
    moves, so construction is kept to plain assignments.
    """

    __slots__ = FIELDS

    def __init__(self, id, status=TODO, priority=0, retry=0, assignee=None, in_=b"", out=None,
                 sat=None, laf=None, cat=0, tags=(), rev=0):
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

    def _values(self):
        return (self.id, self.status, self.priority, self.retry, self.assignee, self.in_, self.out,
                self.sat, self.laf, self.cat, self.tags, self.rev)

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
    if not tag or any(ch.isspace() or ch == "," for ch in tag):
        raise TransitionError(f"bad tag {tag!r}: tags are non-empty words without spaces or commas")
    return tag


# --- transitions -----------------------------------------------------------

def new_task(task_id, data, *, priority=0, retry=0, tags=(), now):
    """open: a new `todo` task (the store refuses an existing id)."""
    validate_id(task_id)
    if retry < 0:
        raise TransitionError("retry must be 0 or more")
    tags = tuple(sorted({validate_tag(t) for t in tags}))
    return Task(id=task_id, status=TODO, priority=int(priority), retry=int(retry),
                in_=bytes(data), cat=now, tags=tags, rev=1)


def assign(task, instance):
    """todo → nextup on `instance`."""
    if task.status != TODO:
        raise TransitionError(f"task {task.id} is {task.status}, not todo")
    return task.with_(status=NEXTUP, assignee=instance)


def close(task, instance, status, out, sat, laf):
    """Finish a task run by `instance`; a failure with retries left restarts it.

    Returns (new_task, transition_name) where the name is "close" or
    "restart", so the scheduler can log which one happened.
    """
    if task.status != NEXTUP or task.assignee != instance:
        raise TransitionError(f"task {task.id} is not nextup on {instance}")
    if status not in FINISHED:
        raise TransitionError(f"cannot close with status {status!r}")
    if status == FAILED and task.retry > 0:
        return task.with_(status=TODO, retry=task.retry - 1, priority=task.priority - 1,
                          assignee=None, out=out, sat=sat, laf=laf), "restart"
    return task.with_(status=status, out=out, sat=sat, laf=laf), "close"


def rollback(task):
    """nextup → todo: the instance holding it was lost."""
    if task.status != NEXTUP:
        raise TransitionError(f"task {task.id} is {task.status}, not nextup")
    return task.with_(status=TODO, assignee=None)


def requeue(task, retry=0):
    """done/failed → todo with a fresh retry count; `out` kept until it reruns."""
    if task.status not in FINISHED:
        raise TransitionError(f"task {task.id} is {task.status}, not finished")
    return task.with_(status=TODO, retry=int(retry), assignee=None)


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
