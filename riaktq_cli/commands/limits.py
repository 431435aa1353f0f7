"""`riaktq limit`, `riaktq limits` and `riaktq schedules`.

Thin click commands over `Queue.limit` / `Queue.limits` / `Queue.schedules`
(api_control.py); what the scheduler does with them is in
riaktq_cli/limits.py and riaktq_cli/schedules.py.
"""

import click

from riaktq_cli.output import render

LIMIT_COLUMNS = [("tag", "TAG"), ("concurrency", "CONCURRENCY"), ("in_flight", "IN FLIGHT"), ("rate", "RATE"),
                 ("used", "USED IN WINDOW"), ("applied", "APPLIED")]
SCHEDULE_COLUMNS = [("name", "NAME"), ("when", "WHEN"), ("catch_up", "CATCH UP"), ("last_slot", "LAST SLOT (UTC)"),
                    ("last_task", "LAST TASK"), ("last_status", "STATUS"), ("next_slot", "NEXT SLOT (UTC)")]


@click.command("limit")
@click.option("--tag", required=True, metavar="TAG", help="The tag whose tasks are limited.")
@click.option("--concurrency", type=click.IntRange(0), metavar="N",
              help="At most N tasks needing TAG assigned and unfinished at once, across every worker.")
@click.option("--rate", metavar="COUNT/WINDOW", help="At most COUNT assigns per sliding WINDOW: 10/m, 5/2s, 1000/1h.")
@click.option("--clear", is_flag=True, help="Drop TAG's limits.")
@click.pass_obj
def limit_cmd(app, tag, concurrency, rate, clear):
    """Limit the tasks needing a tag across every worker (kept in the store).

    The scheduler that holds the lease sees every assignment, so the limit
    holds for the whole queue, through failovers; tasks over it wait as
    todo while others flow. It applies a change within about a second
    (`riaktq limits` says when it has).

    \b
    Examples:
      riaktq limit --tag db --concurrency 2     # a database that takes two at a time
      riaktq limit --tag api --rate 10/m        # an external API's quota
      riaktq limit --tag db --clear
    """
    limits = app.queue(create=False).limit(tag, concurrency=concurrency, rate=rate, clear=clear)
    now = limits.get(tag)
    if now is None:
        click.echo(f"riaktq: no limit on {tag}", err=True)
    else:
        parts = [f"concurrency {now['concurrency']}"] if now["concurrency"] is not None else []
        parts += [f"rate {now['rate']}"] if now["rate"] else []
        click.echo(f"riaktq: {tag} limited to {', '.join(parts)} (the scheduler applies it within a second)",
                   err=True)


@click.command("limits")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def limits_cmd(app, fmt):
    """List the limits per tag: the limit, tasks in flight, assigns in the current window.

    \b
    Examples:
      riaktq limits
      riaktq limits --format json
    """
    rows = app.queue(create=False).limits()
    if fmt == "table" and not rows:
        click.echo("no limits", err=True)
        return
    if fmt == "table":
        rows = [dict(r, applied="yes" if r["applied"] else "not yet applied",
                     concurrency="-" if r["concurrency"] is None else r["concurrency"],
                     rate=r["rate"] or "-", used="-" if r["used"] is None else r["used"]) for r in rows]
    render(rows, LIMIT_COLUMNS, fmt)


@click.command("schedules")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def schedules_cmd(app, fmt):
    """List the [[schedule]] tables of the config file: the last slot, the
    task opened for it and its status, the next slot.

    \b
    Examples:
      riaktq schedules
      riaktq schedules --format json
    """
    queue = app.queue(create=False)
    rows = queue.schedules()
    if fmt == "table" and not rows:
        click.echo("no schedules in the config file", err=True)
        return
    render(rows, SCHEDULE_COLUMNS, fmt)
