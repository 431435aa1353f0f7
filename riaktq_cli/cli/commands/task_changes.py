"""`riaktq cancel` and `riaktq requeue`: change the course of tasks
already opened -- end those that should not run (any more), run finished
ones again.

Thin click commands over `Queue.cancel` / `Queue.cancel_where` /
`Queue.requeue` (api_control.py, api.py); the scheduler's part of a cancel
is in riaktq_cli/scheduler/cancelling.py.
"""


import click

from riaktq_cli.cli import partial
from riaktq_cli.core import task as tasks_mod
from riaktq_cli.cli.completion import complete_task_id
from riaktq_cli.core.errors import Incomplete, RiaktqError, WrongStatus
from riaktq_cli.runtime.logs import error_line
from riaktq_cli.cli.params import DURATION, IDENTIFIER
from riaktq_cli.core.task import NEXTUP, TODO

DRY_RUN_STATES = {"failed": "would fail", "cancelling": "would stop"}


@click.command("cancel")
@click.argument("task_ids", nargs=-1, metavar="[ID]...", type=IDENTIFIER, shell_complete=complete_task_id)
@click.option("--reason", metavar="TEXT", help="Why; the task's out becomes \"cancelled: TEXT\".")
@click.option("--status", type=click.Choice([TODO, NEXTUP]),
              help="Cancel every task with this status (instead of IDs). [default with --tag/--age: both]")
@click.option("--tag", metavar="TAG", help="Select: only tasks that need this tag.")
@click.option("--age", type=DURATION, metavar="DURATION", help="Select: only tasks created at least this long ago.")
@click.option("--dry-run", is_flag=True, help="List what would be cancelled; change nothing.")
@click.option("--force", is_flag=True, help="Select even while the store says its listings may be partial.")
@click.pass_obj
def cancel_cmd(app, task_ids, reason, status, tag, age, dry_run, force):
    """Cancel tasks: they end failed, out "cancelled: REASON".

    A todo task ends at once. A nextup task is withdrawn from its
    instance's queue, or, if it is running, its handler process is killed
    (as on a time limit) -- by the scheduler, within an iteration or two;
    `riaktq wait ID` returns when it has. Prints `ID<tab>failed` (ended
    now) or `ID<tab>cancelling` (being stopped) per task; with --dry-run,
    what it would do: `ID<tab>would fail` or `ID<tab>would stop`. Exit 1 if
    an id is missing or already finished (one line each); the others are
    cancelled.

    \b
    Examples:
      riaktq cancel job-7 --reason "wrong input file"
      riaktq cancel --status todo --tag gpu --age 1d --dry-run
      riaktq cancel --status nextup --tag gpu
    """
    selecting = status is not None or tag is not None or age is not None
    if bool(task_ids) == selecting:
        raise click.UsageError("give task IDs, or select with --status/--tag/--age (not both)")
    queue = app.queue(create=False)
    counts = {"failed": 0, "cancelling": 0}
    refused = 0

    def show(outcomes):
        nonlocal refused
        for outcome in outcomes:
            if not outcome.ok:
                refused += 1
                error_line(outcome.error)
                continue
            state = "cancelling" if outcome.task.status == NEXTUP else "failed"
            counts[state] += 1
            # a dry run leaves the task as it is: say what a cancel would do
            click.echo(f"{outcome.id}\t{DRY_RUN_STATES[state] if dry_run else state}")
    if task_ids:
        show(queue.cancel(task_ids, reason=reason, dry_run=dry_run))
    else:
        partial.refuse_unless_forced(queue, force, dry_run, "cancel by selection")
        queue.cancel_where(status=status, tag=tag, age=age, reason=reason, dry_run=dry_run, on_batch=show)
    verb = "would cancel" if dry_run else "cancelled"
    click.echo(f"riaktq: {verb} {counts['failed'] + counts['cancelling']} task(s): {counts['failed']} todo"
               f" (failed at once), {counts['cancelling']} nextup (stopped by the scheduler)", err=True)
    if refused:
        raise Incomplete()


@click.command("requeue")
@click.argument("task_ids", nargs=-1, metavar="[ID]...", type=IDENTIFIER, shell_complete=complete_task_id)
@click.option("--status", type=click.Choice(tasks_mod.FINISHED),
              help="Requeue every task with this status (instead of IDs).")
@click.option("--age", type=DURATION, metavar="DURATION",
              help="With --status: only tasks created at least this long ago.")
@click.option("--retry", type=click.IntRange(0, tasks_mod.RETRY_MAX), default=0, show_default=True,
              help="The fresh retry count.")
@click.option("--priority", type=int, metavar="N", help="A new priority (higher runs first). [default: kept]")
@click.option("--dry-run", is_flag=True, help="List what would be requeued; change nothing.")
@click.option("--force", is_flag=True, help="With --status: even while the store says its listings may be partial.")
@click.pass_obj
def requeue_cmd(app, task_ids, status, age, retry, priority, dry_run, force):
    """Put finished (done or failed) tasks back to todo, to run again.

    The task keeps its priority (unless --priority) and the `out` of its
    last run until it runs again; its retry count starts afresh (--retry).

    \b
    Examples:
      riaktq requeue task-42 task-43
      riaktq requeue --status failed --dry-run      # which ones?
      riaktq requeue --status failed --age 1h --retry 2
      riaktq requeue task-42 --priority 10
    """
    from riaktq_cli.api.outcomes import chunks
    from riaktq_cli.api.inputs import checked

    if bool(task_ids) == (status is not None):
        raise click.UsageError("give task IDs or --status done|failed (not both)")
    if age is not None and status is None:
        raise click.UsageError("--age goes with --status")
    if priority is not None:  # checked before any task is read: bad input is exit 2 even if none match
        checked(tasks_mod.check_int, priority, "priority", tasks_mod.PRIORITY_MIN, tasks_mod.PRIORITY_MAX)
    queue = app.queue(create=False)
    if not task_ids:
        partial.refuse_unless_forced(queue, force, dry_run, "requeue --status")
    ids = list(dict.fromkeys(task_ids)) if task_ids else queue.ids(status, age=age)
    moved, refused = 0, 0
    for batch in chunks(ids):  # a chunk at a time: --status may match millions
        for outcome in queue.requeue(batch, retry=retry, status=status, dry_run=dry_run,
                                     priority=priority):
            if outcome.ok:
                moved += 1
                if dry_run:
                    click.echo(outcome.id)
            elif task_ids:  # with --status, tasks that changed meanwhile are skipped quietly
                refused += 1
                left = "; left alone" if isinstance(outcome.error, WrongStatus) else ""
                error_line(f"{outcome.error}{left}")
    verb = "would requeue" if dry_run else "requeued"
    click.echo(f"riaktq: {verb} {moved} task(s)", err=True)
    if refused:
        raise RiaktqError(f"{refused} task(s) not requeued")
