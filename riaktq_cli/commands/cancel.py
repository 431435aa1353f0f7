"""`riaktq cancel`: end tasks that should not run (any more).

A thin click command over `Queue.cancel` / `Queue.cancel_where`
(api_control.py); the scheduler's part is in riaktq_cli/cancelling.py.
"""

import sys

import click

from riaktq_cli.completion import complete_task_id
from riaktq_cli.params import DURATION
from riaktq_cli.task import NEXTUP, TODO


@click.command("cancel")
@click.argument("task_ids", nargs=-1, metavar="[ID]...", shell_complete=complete_task_id)
@click.option("--reason", metavar="TEXT", help="Why; the task's out becomes \"cancelled: TEXT\".")
@click.option("--status", type=click.Choice([TODO, NEXTUP]),
              help="Cancel every task with this status (instead of IDs). [default with --tag/--age: both]")
@click.option("--tag", metavar="TAG", help="Select: only tasks that need this tag.")
@click.option("--age", type=DURATION, metavar="DURATION", help="Select: only tasks created at least this long ago.")
@click.option("--dry-run", is_flag=True, help="List what would be cancelled; change nothing.")
@click.pass_obj
def cancel_cmd(app, task_ids, reason, status, tag, age, dry_run):
    """Cancel tasks: they end failed, out "cancelled: REASON".

    A todo task ends at once. A nextup task is withdrawn from its
    instance's queue, or, if it is running, its handler process is killed
    (as on a time limit) -- by the scheduler, within an iteration or two;
    `riaktq wait ID` returns when it has. Prints `ID<tab>failed` (ended
    now) or `ID<tab>cancelling` (being stopped) per task. Exit 1 if an id is
    missing or already finished (one line each); the others are cancelled.

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
                click.echo(f"riaktq: error: {outcome.error}", err=True)
                continue
            state = "cancelling" if outcome.task.status == NEXTUP else "failed"
            counts[state] += 1
            click.echo(f"{outcome.id}\t{state}")
    if task_ids:
        show(queue.cancel(task_ids, reason=reason, dry_run=dry_run))
    else:
        queue.cancel_where(status=status, tag=tag, age=age, reason=reason, dry_run=dry_run, on_batch=show)
    verb = "would cancel" if dry_run else "cancelled"
    click.echo(f"riaktq: {verb} {counts['failed'] + counts['cancelling']} task(s): {counts['failed']} todo"
               f" (failed at once), {counts['cancelling']} nextup (stopped by the scheduler)", err=True)
    if refused:
        sys.exit(1)
