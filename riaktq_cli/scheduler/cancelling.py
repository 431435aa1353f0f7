"""Cancelling a nextup task: the scheduler's part of `riaktq cancel`.

A todo task is nobody's: the command fails it at once (`task.cancel`). A
nextup task belongs to a run on an instance, so the command only marks it
(`task.cancel` = the reason), and the scheduler, which sees the mark in the
nextup index it reads every iteration anyway (on Riak, in the `assignee_bin`
term: no extra request), does the rest here:

- an entry the instance has not taken yet is withdrawn from its inbox; the
  task, held by nobody now, goes through the rollback path, and `rollback`
  fails a marked task ("cancelled: REASON") instead of requeueing it;
- a run the instance has taken (queued or at hand) is listed in the inbox's
  `cancel` list as [id, run, seq]: the worker drops it if unstarted (a
  `returned` result) or kills the handler process under it (a `failed`
  result), and the commit closes it failed "cancelled: REASON".

Whatever ends a marked run -- its result, a hand-back, its instance lost,
a scheduler that died in between -- the transitions end it failed, never
todo, and the mark lives in the task, so a scheduler that takes over picks
up where the last one was.

A withdrawn entry is listed in `cancel` too: the worker may have read its
inbox just before the withdrawal. A `cancel` item stays until the
instance's record shows it took that sequence number (`taken`) and holds
the run no more; so it is never dropped before the worker can have seen it.
"""


def withdraw(inboxes, instances, live, marked):
    """Withdraw or stop the runs of the tasks marked for cancellation.

    `marked` maps task id -> assignee (nextup tasks with a cancel mark);
    `inboxes` are the scheduler's (inboxes.Inboxes: changed in place, and
    told so). Runs on instances that are not live are left to the rollback
    path."""
    wanted = {}
    for task_id, name in marked.items():
        if name in live:
            wanted.setdefault(name, set()).add(task_id)
    for name, record in instances.items():
        inbox = inboxes[name]
        ids = wanted.get(name, ())
        before = inbox.cancel
        held = record.held_runs()
        stops = {tuple(item) for item in before if item[2] > record.taken or (item[0], item[1]) in held}
        entries = []
        for entry in inbox.entries:
            if entry.id in ids:
                stops.add((entry.id, entry.run, entry.seq))
            else:
                entries.append(entry)
        stops.update((item.id, item.run, item.seq) for item in record.taken_runs() if item.id in ids)
        after = sorted(stops)
        if len(entries) != len(inbox.entries) or after != before:
            inbox.entries, inbox.cancel = entries, after
            inboxes.changed(name)
