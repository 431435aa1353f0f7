"""Which `todo` tasks go to which instance with free slots.

Order is DESIGN's (priority desc, then creation, then id); a task with tags
goes only to an instance offering all of them. The scan of the global order
is bounded (SCAN_FACTOR per free slot), so a long run of tasks that no live
instance can take -- a backlog tagged `gpu` with no `gpu` worker up -- would
hide every task behind it. When the bounded scan ends with slots still free
and tasks passed over, a second pass asks the store for the distinct tag
sets of the `todo` tasks (one index seek each), keeps those some free
instance can serve, and merges their per-tag-set orders: every task it sees
there is assignable, so the backlog costs nothing however long it is.
"""

import heapq

from riaktq_cli.task import assignment_order

# How many todo tasks the first pass looks at per free slot (at least SCAN_MIN).
SCAN_FACTOR = 4
SCAN_MIN = 100
PAGE_MAX = 500


def pick_tasks(store, free, tags_of, limits=None, idle=()):
    """{task id: instance name} for up to sum(free) tasks.

    `free` maps instance name -> free slots (consumed here); `tags_of` maps
    instance name -> the tags it offers; `limits` (limits.TagLimits) passes
    over tasks over a tag's limit as if no instance could take them; `idle`
    names the instances that hold nothing (nothing queued, nothing at hand):
    each of those gets a task before any instance gets one more to queue
    behind its own."""
    offered = {n: set(t) for n, t in tags_of.items()}
    picks = {}
    slots = sum(free.values())
    idle = set(idle)
    passed_over = _take(store.iter_todo(page_size=min(slots, PAGE_MAX)), free, offered, picks,
                        budget=max(SCAN_MIN, SCAN_FACTOR * slots), limits=limits, idle=idle)
    if free and passed_over:
        servable = [ts for ts in store.todo_tagsets() if any(set(ts) <= offered[n] for n in free)
                    and (limits is None or limits.servable(ts))]
        page = min(sum(free.values()), PAGE_MAX)
        streams = [((assignment_order(t), t) for t in store.iter_todo(page_size=page, tags=ts))
                   for ts in servable]
        merged = (t for _, t in heapq.merge(*streams, key=lambda pair: pair[0]))
        _take(merged, free, offered, picks, budget=max(SCAN_MIN, SCAN_FACTOR * sum(free.values())),
              limits=limits, idle=idle)
    return picks


def _take(tasks, free, offered, picks, budget, limits=None, idle=None):
    """Fill free slots from `tasks`; True if the budget ran out with tasks
    passed over for their tags (the first pass may have missed some).
    `idle` (instances holding nothing yet; a set) shrinks as they get a task."""
    idle = set() if idle is None else idle
    passed_over = False
    for task in tasks:
        if task.id in picks:
            continue
        budget -= 1
        candidates = [n for n in free if not task.tags or set(task.tags) <= offered[n]]
        if candidates and limits is not None and not limits.admit(task):
            candidates = []   # over a tag limit (limits.py): waits as todo, passed over
        if candidates:
            # An idle instance first: one that holds nothing starts the task
            # now, where a busy one would queue it behind its own (issue 18:
            # long tasks piled on the worker that had learned a deep queue).
            # Then the one with the most free slots, so work spreads over
            # instances instead of piling onto one.
            name = max(candidates, key=lambda n: (n in idle, free[n], n))
            idle.discard(name)
            picks[task.id] = name
            free[name] -= 1
            if free[name] == 0:
                del free[name]
        else:
            passed_over = True
        if not free:
            return False
        if budget <= 0:
            return passed_over
    return False
