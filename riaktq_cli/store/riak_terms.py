"""Index terms and value decoding of the Riak store (store/riak.py).

Every number in a term has a fixed width so that a lexicographic 2i range
query returns tasks in assignment order: `todo_bin` inverts the priority
(highest first), then creation time, then id. Kept apart from the store so
that the term grammar, which real clusters hold on disk, has one home.
"""

import json
import logging

from riaktq_cli.core.task import NEXTUP, TODO, ended_at

log = logging.getLogger("riaktq")

JSON = "application/json"
PRIORITY_OFFSET = (1 << 63) - 1      # inverts priority into a non-negative number
DIGITS = 20                          # fixed width of every number in a term
HIGH = "9" * DIGITS
NAME_FIRST, NAME_LAST = "0", "{"     # instance names start with [0-9A-Za-z]
CANCEL_MARK = ";cancel"               # assignee_bin suffix of a task marked for cancellation
PARALLEL = 16                        # concurrent requests for multi-key reads/writes ([riak] concurrency)


def number_term(value):
    return f"{value:0{DIGITS}d}"


def todo_term(task):
    return f"{number_term(PRIORITY_OFFSET - task.priority)}:{number_term(task.cat)}:{task.id}"


def tag_key(tags):
    """The tag set as one term prefix: sorted tags joined by commas (tags
    hold no commas or semicolons), "" for an untagged task."""
    return ",".join(tags)


def todotag_term(task):
    return f"{tag_key(task.tags)};{todo_term(task)}"


def task_indexes(task):
    """The whole index set of a task in its current state."""
    indexes = {"status_bin": task.status, "statuscat_bin": f"{task.status}:{number_term(task.cat)}"}
    if task.status == TODO and task.due is not None:
        # waiting: out of the todo order (no scan costs it anything) until
        # the scheduler finds it due in this index and clears `due`
        indexes["due_bin"] = number_term(task.due)
    elif task.status == TODO:
        indexes["todo_bin"] = todo_term(task)
        # the same order within one tag set, for the scheduler's fair scan
        indexes["todotag_bin"] = todotag_term(task)
    elif task.status == NEXTUP and task.assignee:
        indexes["assignee_bin"] = assignee_term(task)
    elif (ended := ended_at(task)) is not None:
        indexes["finished_bin"] = f"{task.status}:{number_term(max(0, ended))}"
    return indexes


def due_tasks(store, start=0, end=None, limit=500):
    """RiakStore.due_tasks: one range query on `due_bin` with its terms."""
    page = store.riak.call(store.client.index, store.btype, store.bucket("task"), "due_bin",
                        start=number_term(max(0, start)), end=HIGH if end is None else number_term(max(0, end)),
                        max_results=max(1, limit), return_terms=True)
    return [(int(term), key) for term, key in page.results]
def assignee_term(task):
    """`<assignee>`, or `<assignee>;cancel` once `riaktq cancel` marked the
    task: the scheduler reads this index every iteration anyway, so it sees
    cancellations at no extra request (names hold no ";")."""
    return task.assignee + (CANCEL_MARK if task.cancel is not None else "")


def parse_assignee_term(term):
    """(assignee, cancelling) of an `assignee_bin` term."""
    if term.endswith(CANCEL_MARK):
        return term[:-len(CANCEL_MARK)], True
    return term, False


def decode_siblings(siblings, what):
    """Parse the JSON value of each sibling, skipping any that is not JSON
    (a value some other program wrote under our key); logged once each."""
    docs = []
    for sibling in siblings:
        try:
            docs.append(json.loads(sibling.value))
        except ValueError:
            log.warning("riak: ignoring a value of %s that is not JSON (%d bytes)", what, len(sibling.value))
    return docs
