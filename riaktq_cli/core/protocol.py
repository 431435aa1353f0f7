"""The two records through which scheduler and workers talk (DESIGN §2).

`instance/<name>` is written only by that worker; `inbox/<name>` only by the
scheduler. These helpers build and read both, so the two sides agree on
every field in one place (records.py).

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

The records, typed, with their to_dict/from_dict and the queries on them,
are in records.py; the dicts they read and write:

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

from riaktq_cli.core.records import (
    BUSY,
    CRASHED,
    HANDOVER_MARK,
    IDLE,
    RETURNED,
    STOPPED,
    Entry,
    Inbox,
    Instance,
    Result,
    Taken,
    handover_name,
    run_of,
    split_handovers,
)  # noqa: F401  (the protocol's names, where the worker looks for them)

# The worker (worker/*) and the tests still speak dicts; these helpers read
# and write them through the records, so the format lives in one place.


def empty_inbox():
    return Inbox().to_dict()


def inbox_entry(seq, task):
    return Entry.of(seq, task).to_dict()


def entry_input(entry):
    return Entry.from_dict(entry).input


def run_key(item):
    """Identity of one run: (task id, run number, incarnation), for entries,
    queue items and results (None for one written before stamps)."""
    return (item["id"], item.get("run", 0), item.get("inc"))


def committed_keys(inbox):
    """The run keys an inbox lists as committed."""
    return Inbox.from_dict(inbox).committed_keys()


def make_result(entry, status, out, sat, laf):
    return Result.of(Taken.from_dict(entry), status, out, sat, laf).to_dict()


def result_output(result):
    return Result.from_dict(result).output


def instance_record(*, name, token, handler, tags, host, pid, started, heartbeat, status, taken,
                    epoch, queue, current, outbox, replaces=None, handover_of=None, log_lost=0, hint=None):
    """The one place an instance record is built (worker side). `queue` and
    `current` are inbox entries; `current` is (entry, since µs) or None.
    `log_lost`: log lines and handler output its stderr could not take;
    `hint`: the address its wake-up hints go to."""
    at_hand = None
    if current is not None:
        at_hand = Taken.from_dict(current[0])
        at_hand.since = current[1]
    return Instance(name, token, handler, list(tags), host, pid, started, heartbeat, status, taken, epoch,
                    [Taken.from_dict(e) for e in queue], at_hand, [Result.from_dict(r) for r in outbox],
                    replaces, handover_of, log_lost, hint).to_dict()


def is_live(instance, now_us, timeout_us):
    return Instance.from_dict(instance).is_live(now_us, timeout_us)
