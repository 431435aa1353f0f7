"""Commands that control the queue as a whole: wait, purge, vacuum.

Thin click commands over the Python API (riaktq_cli/api/queue.py), like every
command: `Queue.wait`, `Queue.purge` and `Queue.compact` do the work, so a
script gets the same answers. `finish_wait` is the one way a command waits
for tasks and turns their end into an exit code; `open --wait` uses it too.
"""

import json
import sys

import click

from riaktq_cli.cli import partial
from riaktq_cli.core import task as tasks_mod
from riaktq_cli.cli.completion import complete_task_id
from riaktq_cli.core.durations import format_duration
from riaktq_cli.core.errors import Incomplete
from riaktq_cli.cli.params import DURATION, IDENTIFIER


def finish_wait(queue, ids, timeout, show):
    """Wait for `ids` (Queue.wait), hand the finished tasks to `show`, and
    exit 0 if all are done, 1 if any failed. A timeout is WaitTimeout:
    exit 2 with one line naming what is still pending."""
    finished = queue.wait(ids, timeout)
    show(finished)
    if not all(t.status == tasks_mod.DONE for t in finished):
        raise Incomplete()  # the failed tasks' outputs were shown: exit 1, no more said


def _show_ids(finished):
    for task in finished:
        click.echo(f"{task.id}\t{task.status}")


def _show_json(finished):
    click.echo(json.dumps([t.to_view() for t in finished], ensure_ascii=False))


@click.command("wait")
@click.argument("task_ids", nargs=-1, required=True, metavar="ID...", type=IDENTIFIER, shell_complete=complete_task_id)
@click.option("--timeout", type=DURATION, metavar="DURATION", help="Give up after this long (exit 2).")
@click.option("--format", "fmt", type=click.Choice(["ids", "json"]), default="ids", show_default=True,
              help="ids: one `ID<tab>STATUS` line per task; json: the tasks as `get --format json`.")
@click.pass_obj
def wait_cmd(app, task_ids, timeout, fmt):
    """Block until the tasks are finished (done or failed).

    Exit 0 when all are done, 1 when any failed, 2 on timeout (one line on
    stderr names what is still pending).

    \b
    Examples:
      riaktq wait job-1 job-2 --timeout 30s
      riaktq wait job-1 --format json | jq -r '.[0].out'
    """
    finish_wait(app.queue(create=False), task_ids, timeout, _show_json if fmt == "json" else _show_ids)


@click.command("purge")
@click.option("--status", type=click.Choice(tasks_mod.FINISHED), required=True,
              help="Delete tasks with this status.")
@click.option("--age", type=DURATION, metavar="DURATION", required=True,
              help="Only tasks created at least this long ago (0s: all of them).")
@click.option("--dry-run", is_flag=True, help="List the ids that would go; delete nothing.")
@click.option("--vacuum", is_flag=True, help="Then give the space back (embedded store; see `vacuum`).")
@click.option("--force", is_flag=True, help="Even while the store says its listings may be partial.")
@click.pass_obj
def purge_cmd(app, status, age, dry_run, vacuum, force):
    """Delete finished tasks created before now minus --age.

    Reads and deletes a page of ids at a time, so memory stays flat at
    millions of tasks; shows progress on a terminal and ends with one line.
    On Riak each delete carries the vector clock just read.

    \b
    Examples:
      riaktq purge --status done --age 30d
      riaktq purge --status failed --age 7d --dry-run
      riaktq purge --status done --age 30d --vacuum   # and shrink riaktq.db

    While a Riak cluster catches up (a node down or rejoining) the
    selection may be partial: purge refuses (exit 3) unless --force.
    """
    if dry_run and vacuum:
        raise click.UsageError("--vacuum changes the store; not with --dry-run")
    queue = app.queue(create=False)
    partial.refuse_unless_forced(queue, force, dry_run, "purge")
    with _progress(dry_run) as advance:
        def on_batch(ids):
            if dry_run:
                click.echo("\n".join(ids))
            advance(len(ids))
        removed = queue.purge(status, age, dry_run=dry_run, on_batch=on_batch)
    verb = "would delete" if dry_run else "deleted"
    older = f"older than {format_duration(age)}" if age else "of any age"
    click.echo(f"riaktq: {verb} {removed} {status} task(s) {older}", err=True)
    if vacuum:
        _compact(queue)


@click.command("vacuum")
@click.pass_obj
def vacuum_cmd(app):
    """Give the space of deleted tasks back to the file system.

    On the embedded store: VACUUM, then a truncating WAL checkpoint (waits
    for running readers). On Riak there is nothing to do: Riak reaps
    deleted keys and compacts its backends itself.

    \b
    Examples:
      riaktq vacuum
    """
    _compact(app.queue(create=False))


def _compact(queue):
    sizes = queue.compact()
    if sizes is None:
        click.echo("riaktq: nothing to compact on this store (it reclaims space itself)", err=True)
        return
    before, after = sizes
    click.echo(f"riaktq: compacted the store: {_mb(before)} -> {_mb(after)}", err=True)


def _mb(size):
    return f"{size / 1e6:.1f} MB"


class _progress:
    """A rich progress line on a terminal's stderr; nothing on a pipe.
    Yields advance(n)."""

    def __init__(self, dry_run):
        self.label = "listing" if dry_run else "deleting"
        self.bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return lambda n: None
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                            TextColumn("{task.completed} task(s)"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        job = self.bar.add_task(self.label, total=None)
        return lambda n: self.bar.advance(job, n)

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.stop()
