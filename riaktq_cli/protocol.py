"""The two records through which scheduler and workers talk (DESIGN §2).

`instance/<name>` is written only by that worker; `inbox/<name>` only by the
scheduler. These helpers build and read both, so the two sides agree on
every field in one place.

Identity of a run: each assign starts run number `task.run` (DESIGN "a run
has an identity"). The inbox entry carries it, the worker echoes it in its
result, and results and commits are keyed by (task id, run): the scheduler
commits a result only if the task is still `nextup` on that instance *for
that run*, so a result of an older run -- from an instance presumed dead,
or from a second process under the same name -- is never committed.

Identity of a task: an id can be removed and opened again while a run of
the old task is under way, and the new task starts again at run 1. So the
task carries its incarnation (`inc`, a random stamp made at open) and the
entry, the queue items and the result carry it too: a run is (id, run,
inc), and a result commits only to the incarnation it ran. Records written
before stamps existed have none (None): they match a task without one, as
(id, run) did then.

Fencing: the inbox carries the `epoch` of the scheduler lease it was written
under and the `token` of the worker process it addresses. A worker ignores
an inbox from an older epoch (a scheduler that lost its lease and does not
know it yet) and entries addressed to another process's token (a second
process started under its name, or its predecessor).

Inbox:    {"seq", "epoch", "token", "entries": [entry], "committed": [[id, run, inc]],
           "cancel": [[id, run, seq]]: runs `riaktq cancel` stops (cancelling.py)}
Entry:    {"seq", "id", "run", "inc", "in" (base64), "tags", "time_limit" (s or null)}
Instance: {"name", "token", "replaces" (a dead predecessor's token), "handler", "tags", "host", "pid", "started",
           "heartbeat", "status", "taken", "epoch", "queue": [{"id", "seq", "run", "inc"}],
           "current": {"id", "seq", "run", "inc", "since"} | null, "outbox": [result]}
Handover: an instance record stored under `<name>~<token>` (never an
          instance name: `~` is not allowed in one) with "handover_of": name.
          A process that finds another live process under its name leaves,
          and first writes its outbox there, where the other cannot
          overwrite it; the scheduler commits it as the name's results and
          deletes the record once nothing in it is left to commit.
Result:   {"id", "run", "inc", "seq", "status", "out" (base64), "sat", "laf"}
          status is done or failed (closed; failed counts against `retry`),
          RETURNED: a run the worker hands back unstarted or stopped by its
          shutdown grace (rolled back, not counted as an attempt), or
          CRASHED: the run killed the process running the handler (exit,
          signal, OOM); `out` says how. Counted like a run lost with its
          instance: back to todo until `max_attempts`, then failed.
"""

import base64

IDLE, BUSY, STOPPED = "idle", "busy", "stopped"
RETURNED, CRASHED = "returned", "crashed"
HANDOVER_MARK = "~"


def handover_name(name, token):
    """Where a leaving process of `name` writes its results (see Handover)."""
    return f"{name}{HANDOVER_MARK}{token}"


def split_handovers(records):
    """(instances, handovers) of a listing of instance records: handover
    records are no instances, and no view or iteration treats them as one."""
    instances, handovers = {}, {}
    for name, record in records.items():
        (handovers if record.get("handover_of") else instances)[name] = record
    return instances, handovers


def empty_inbox():
    return {"seq": 0, "epoch": 0, "token": None, "entries": [], "committed": [], "cancel": []}


def inbox_entry(seq, task):
    return {"seq": seq, "id": task.id, "run": task.run, "inc": task.inc,
            "in": base64.b64encode(task.in_).decode("ascii"),
            "tags": list(task.tags), "time_limit": task.time_limit}


def entry_input(entry):
    return base64.b64decode(entry["in"])


def run_key(item):
    """Identity of one run: (task id, run number, incarnation), for entries,
    queue items and results (None for one written before stamps)."""
    return (item["id"], item.get("run", 0), item.get("inc"))


def run_of(task):
    """The run key of a task's current run (see run_key)."""
    return (task.id, task.run, task.inc)


def committed_keys(inbox):
    """The run keys an inbox lists as committed; an [id, run] item of an
    inbox written before stamps is a run without one."""
    return {(k[0], k[1], k[2] if len(k) > 2 else None) for k in (inbox or {}).get("committed", [])}


def make_result(entry, status, out, sat, laf):
    return {"id": entry["id"], "run": entry.get("run", 0), "inc": entry.get("inc"), "seq": entry["seq"],
            "status": status,
            "out": base64.b64encode(out).decode("ascii"), "sat": sat, "laf": laf}


def result_output(result):
    return base64.b64decode(result["out"])


def pending_entries(inbox, instance):
    """Inbox entries the instance has not taken yet (seq above its `taken`)."""
    taken = instance.get("taken", 0) if instance else 0
    return [e for e in inbox["entries"] if e["seq"] > taken]


def unstarted_runs(inbox, instance):
    """Runs the instance holds but has certainly not started: pending in
    its inbox or waiting in its queue. Losing them costs no attempt."""
    runs = {run_key(e) for e in pending_entries(inbox, instance)}
    if instance:
        runs.update(run_key(e) for e in instance.get("queue", []))
    return runs


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


def instance_record(*, name, token, handler, tags, host, pid, started, heartbeat, status, taken,
                    epoch, queue, current, outbox, replaces=None, handover_of=None, log_lost=0):
    """The one place an instance record is built (worker side). `queue` and
    `current` are inbox entries; `current` is (entry, since µs) or None.
    `log_lost`: log lines and handler output its stderr could not take."""
    return {
        "name": name, "token": token, "handler": handler, "tags": list(tags), "host": host,
        "pid": pid, "started": started, "heartbeat": heartbeat, "status": status, "taken": taken,
        "epoch": epoch,
        "queue": [{"id": e["id"], "seq": e["seq"], "run": e.get("run", 0), "inc": e.get("inc")} for e in queue],
        "current": None if current is None else {
            "id": current[0]["id"], "seq": current[0]["seq"], "run": current[0].get("run", 0),
            "inc": current[0].get("inc"), "since": current[1]},
        "outbox": list(outbox), "replaces": replaces,
        **({"handover_of": handover_of} if handover_of else {}),
        **({"log_lost": log_lost} if log_lost else {}),
    }


def is_live(instance, now_us, timeout_us):
    return (instance.get("status") != STOPPED
            and now_us - instance.get("heartbeat", 0) <= timeout_us)


def queue_length(inbox, instance):
    """Tasks the instance has on hand: pending + queued + the one running."""
    n = len(pending_entries(inbox, instance)) + len(instance.get("queue", []))
    return n + (1 if instance.get("current") else 0)
