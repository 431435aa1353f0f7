"""`riaktq pause` and `riaktq resume`: stop and restart assignment.

Thin click commands over `Queue.pause` / `Queue.resume` (api_control.py);
how the scheduler applies the state is in riaktq_cli/pausing.py.
"""

import click

from riaktq_cli import pausing


@click.command("pause")
@click.option("--tag", metavar="TAG", help="Pause only the tasks that need this tag.")
@click.pass_obj
def pause_cmd(app, tag):
    """Stop assigning tasks (all, or those needing --tag); work in flight finishes.

    The pause is kept in the store: it holds across scheduler restarts and
    failovers until `riaktq resume`. The scheduler applies it within about
    a second; `riaktq stats` says when it has. Tags add up: pause --tag a,
    then --tag b, pauses both.

    \b
    Examples:
      riaktq pause                 # before maintenance; `riaktq stats` shows it
      riaktq pause --tag gpu       # gpu tasks wait; the rest flows on
    """
    state = app.queue(create=False).pause(tag)
    click.echo(f"riaktq: {pausing.describe(state)}; work in flight finishes", err=True)


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
