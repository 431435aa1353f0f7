"""A task's recent transitions, kept in the task itself.

Each transition the scheduler (or an operator) makes appends one entry:
`[at µs, transition, instance, run, reason]` -- assign, close, restart,
rollback, requeue (and cancel). The list rides in the task record (the Riak
body, an SQLite column), so it costs no request of its own: only its bytes.
It is bounded (MAX_ENTRIES, the oldest dropped) so a task that circles for
ever does not grow for ever, and reasons are cut to REASON_MAX characters.
A plain JSON list rather than objects keeps each entry ~50 bytes.

Pure functions only: the transitions in task.py call `appended`; views for
`riaktq get --history` come from `view`.
"""

MAX_ENTRIES = 20
REASON_MAX = 80
KINDS = ("assign", "close", "restart", "rollback", "requeue", "cancel")
FIELDS = ("at", "transition", "instance", "run", "reason")


def appended(history, at, kind, instance, run, reason=None):
    """`history` (a tuple of entries) with one more, the oldest dropped past
    MAX_ENTRIES."""
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    if reason is not None:
        reason = " ".join(reason.split())  # one line: a failure may be a traceback
        if len(reason) > REASON_MAX:
            reason = reason[:REASON_MAX - 1] + "…"
    return (tuple(history) + ((at, kind, instance, run, reason),))[-MAX_ENTRIES:]


def from_record(value):
    """Entries as stored (lists, or None in records made before history)."""
    return tuple(tuple(entry) for entry in value or ())


def to_record(history):
    return [list(entry) for entry in history]


def to_text(history):
    """The SQLite column: NULL for none (`open` imports no json for it)."""
    if not history:
        return None
    import json
    return json.dumps(to_record(history), separators=(",", ":"), ensure_ascii=False)


def from_text(text):
    if not text:
        return ()
    import json
    return from_record(json.loads(text))


def view(history):
    """Entries as JSON objects, oldest first (`get --history --format json`)."""
    return [dict(zip(FIELDS, entry)) for entry in history]
