"""`riaktq pause` and `riaktq resume`: stop and restart assignment.

Thin click commands over `Queue.pause` / `Queue.resume` (api_control.py);
how the scheduler applies the state is in riaktq_cli/scheduler/pausing.py.
"""


import click

from riaktq_cli.scheduler import pausing
from riaktq_cli.core.durations import format_duration
from riaktq_cli.core.errors import Incomplete
from riaktq_cli.core.output import escape
from riaktq_cli.cli.params import DURATION


@click.command("pause")
@click.option("--tag", metavar="TAG", help="Pause only the tasks that need this tag.")
@click.option("--timeout", type=DURATION, metavar="DURATION",
              help=f"Wait this long for the running scheduler to apply it. [default: {pausing.APPLY_WAIT:g}s]")
@click.pass_obj
def pause_cmd(app, tag, timeout):
    """Stop assigning tasks (all, or those needing --tag); work in flight finishes.

    The pause is kept in the store: it holds across scheduler restarts and
    failovers until `riaktq resume`. It returns once the running scheduler
    has applied it (within about a second): from then on nothing opened is
    assigned against it. With no scheduler running, the next one applies it
    before it assigns anything. Exit 1 if the running scheduler has not
    applied it within --timeout (it still will; `riaktq stats` says when).
    Tags add up: pause --tag a, then --tag b, pauses both.

    \b
    Examples:
      riaktq pause                 # before maintenance; `riaktq stats` shows it
      riaktq pause --tag gpu       # gpu tasks wait; the rest flows on
    """
    wait = pausing.APPLY_WAIT if timeout is None else timeout
    state = app.queue(create=False).pause(tag, timeout=wait)
    if state["applied"]:
        click.echo(f"riaktq: {pausing.describe(state)}; work in flight finishes", err=True)
    elif state["scheduler"] is None:
        click.echo(f"riaktq: {pausing.describe(state)}; no scheduler is running: it applies the pause"
                   " when it starts, before it assigns anything", err=True)
    else:
        click.echo(f"riaktq: {pausing.describe(state)}: scheduler {escape(state['scheduler'])} has not applied"
                   f" it within {format_duration(wait)}, so tasks may still be assigned; `riaktq stats`"
                   " says when it has", err=True)
        raise Incomplete()


@click.command("resume")
@click.option("--tag", metavar="TAG", help="Resume only the tasks that need this tag.")
@click.pass_obj
def resume_cmd(app, tag):
    """Assign tasks again: everything (paused tags too), or those needing --tag.

    \b
    Examples:
      riaktq resume
      riaktq resume --tag gpu
    """
    state = app.queue(create=False).resume(tag)
    if pausing.is_paused(state):
        click.echo(f"riaktq: resumed {tag}; still {pausing.describe(state)}", err=True)
    else:
        click.echo("riaktq: assignment resumed", err=True)
