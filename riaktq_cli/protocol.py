"""The two records through which scheduler and workers talk (DESIGN §2).

`instance/<name>` is written only by that worker; `inbox/<name>` only by the
scheduler. These helpers build and read both, so the two sides agree on
every field in one place.

Outbox results and commits are keyed by (task id, inbox seq), not by id
alone: a task restarted onto the same instance runs again under a new seq,
and its second result must not be mistaken for the first, already committed.
"""

import base64

IDLE, BUSY, STOPPED = "idle", "busy", "stopped"


def empty_inbox():
    return {"seq": 0, "entries": [], "committed": []}


def inbox_entry(seq, task):
    return {"seq": seq, "id": task.id, "in": base64.b64encode(task.in_).decode("ascii"),
            "tags": list(task.tags)}


def entry_input(entry):
    return base64.b64decode(entry["in"])


def result_key(result):
    """Identity of one run's result: (task id, inbox seq)."""
    return (result["id"], result["seq"])


def make_result(entry, status, out, sat, laf):
    return {"id": entry["id"], "seq": entry["seq"], "status": status,
            "out": base64.b64encode(out).decode("ascii"), "sat": sat, "laf": laf}


def result_output(result):
    return base64.b64decode(result["out"])


def pending_entries(inbox, instance):
    """Inbox entries the instance has not taken yet (seq above its `taken`)."""
    taken = instance.get("taken", 0) if instance else 0
    return [e for e in inbox["entries"] if e["seq"] > taken]


def held_task_ids(inbox, instance):
    """Every task id the instance holds: pending in its inbox, queued, at
    hand, or finished in its outbox and not yet committed."""
    held = {e["id"] for e in pending_entries(inbox, instance)}
    if instance:
        held.update(e["id"] for e in instance.get("queue", []))
        if instance.get("current"):
            held.add(instance["current"]["id"])
        held.update(r["id"] for r in instance.get("outbox", []))
    return held


def is_live(instance, now_us, timeout_us):
    return (instance.get("status") != STOPPED
            and now_us - instance.get("heartbeat", 0) <= timeout_us)


def queue_length(inbox, instance):
    """Tasks the instance has on hand: pending + queued + the one running."""
    n = len(pending_entries(inbox, instance)) + len(instance.get("queue", []))
    return n + (1 if instance.get("current") else 0)
