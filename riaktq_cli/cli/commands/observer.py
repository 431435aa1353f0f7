"""The operator's view: report, observe, stats.

Thin click commands over `riaktq_cli.views.report` (queries) and `riaktq_cli.views.observer` (the daily run)
and `riaktq_cli.views.stats` (figures, the live view).
"""

import json
import sys

import click

from riaktq_cli.cli import partial
from riaktq_cli.core import task as tasks_mod
from riaktq_cli.config.loading import ObserverQuery
from riaktq_cli.core.errors import RiaktqError, StoreError
from riaktq_cli.cli.options import setting_options
from riaktq_cli.cli.params import COUNT_MAX, DURATION

REPORT_FORMATS = ["ids", "table", "json", "csv"]


def _queries_or_fail(app, command):
    queries = app.config.queries
    if not queries:
        where = app.config.path or "the configuration (no config file found)"
        raise click.UsageError(f"{command}: no [[observer.query]] tables in {where}")
    return queries


@click.command("report")
@click.option("--status", type=click.Choice(tasks_mod.STATUSES), help="Only tasks with this status [default: any].")
@click.option("--age", type=DURATION, metavar="DURATION",
              help="Only tasks created at least this long ago (e.g. 1d), measured against their `cat`.")
@click.option("--key", metavar="NAME", help="Name of the query, shown in json output.")
@click.option("--limit", type=click.IntRange(0, COUNT_MAX), default=0, metavar="N",
              help="At most N ids (per query) [default: 0, all].")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS),
              help="[default: table on a terminal, else ids]")
@click.option("--all-queries", is_flag=True, help="Run every [[observer.query]] of the config file.")
@click.pass_obj
def report_cmd(app, status, age, key, limit, fmt, all_queries):
    """Print the tasks matching a query, oldest first (for cron and people).

    \b
    Examples:
      riaktq report --status failed --age 1d              # ids, one a line
      riaktq report --status todo --age 2h --format table
      riaktq report --status done --age 7d --key week-old --format json
      riaktq report --all-queries --format json          # the config's queries

    Formats: `ids` prints one id a line (nothing at all when nothing
    matched); `json` prints {"key": NAME, "ids": [...]}; `table` and `csv`
    add each task's details. With --all-queries, json prints one such object
    a line per query, ids print `KEY<TAB>ID`, table and csv get a query
    column.

    Exit status: 0 whether or not anything matched; 2 for a bad argument
    or an unreachable store.
    """
    from riaktq_cli.views import report

    if all_queries:
        if status is not None or age is not None or key is not None:
            raise click.UsageError("--all-queries runs the configured queries: give no --status, --age or --key with it")
        queries = _queries_or_fail(app, "--all-queries")
    else:
        queries = [ObserverQuery(key=key, status=status, age=age)]
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else "ids"
    out = sys.stdout
    queue = app.queue(create=False)
    try:
        count = report.write_report(queue, queries, fmt, out, named=all_queries, limit=limit or None)
        out.flush()
        partial.warn(queue)
    except StoreError as exc:
        raise report.ReportStoreError(str(exc)) from None
    if fmt == "table" and count == 0:
        click.echo("riaktq: no matching tasks", err=True)


@click.command("observe")
@click.option("--events", metavar="FILE", default="-", show_default=True,
              help="Append each result as a JSON line to FILE (- for stdout).")
@setting_options("observe")
@click.pass_obj
def observe_cmd(app, settings, events):
    """Run the configured queries once a day, as a daemon.

    Every check (each --interval) runs the [[observer.query]] tables of the
    config file that have not run yet this UTC day, if the --time of day
    has passed, and writes each non-empty result as one JSON line:
    {"key": NAME, "ids": [...], "at": MICROSECONDS}. A query that fails
    is logged and tried again at the next check.

    \b
    Examples:
      riaktq observe                                   # config's time, every minute
      riaktq observe --time 06:30:00 --events /var/log/riaktq/observed.jsonl

    SIGINT/SIGTERM: exit 0.
    """
    from riaktq_cli.views.observer import Observer
    from riaktq_cli.runtime.signals import stop_event_on_signals

    time_of_day, interval = settings.get("observer", "time"), settings.get("observer", "interval")
    queries = _queries_or_fail(app, "observe")
    store = app.store()
    try:
        out = sys.stdout if events == "-" else open(events, "a", encoding="utf-8")
    except OSError as exc:
        raise RiaktqError(f"cannot open {events}: {exc.strerror}") from None
    import logging
    logging.getLogger("riaktq").info(
        "observing %d quer%s once a day after %s UTC, checking every %ss", len(queries),
        "y" if len(queries) == 1 else "ies", time_of_day, f"{interval:g}")
    try:
        Observer(store, queries, time_of_day, out).run(interval, stop_event_on_signals())
    finally:
        if out is not sys.stdout:
            out.close()


@click.command("stats")
@click.option("--watch", is_flag=True, help="A live view, redrawn every second until Ctrl-C.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "prometheus"]), default="table",
              show_default=True, help="prometheus: the text exposition format, for a textfile collector.")
@click.pass_obj
def stats_cmd(app, watch, fmt):
    """How the queue is doing: tasks per status, throughput, instances.

    Shows the task count of every status, the age of the oldest todo task,
    how many tasks closed in the last minute and hour and how many failed
    in the last hour, and every instance (tags, status, queue, outbox,
    heartbeat age, the task at hand and for how long). Instances are judged
    with the running scheduler's instance timeout.

    \b
    Examples:
      riaktq stats
      riaktq stats --watch
      riaktq stats --format json | jq .counts
      riaktq stats --format prometheus > /var/lib/node_exporter/riaktq.prom.$$ \\
        && mv /var/lib/node_exporter/riaktq.prom.$$ /var/lib/node_exporter/riaktq.prom
    """
    from riaktq_cli.views import stats
    from riaktq_cli.runtime.signals import stop_event_on_signals

    if watch and fmt != "table":
        raise click.UsageError(f"--watch is a live view for people; use --format {fmt} without it")
    queue = app.queue(create=False)
    if watch:
        stats.watch(queue.stats, app.config.describe_store(), stop_event_on_signals(quiet=True))
        return
    figures = queue.stats()
    if fmt == "json":
        click.echo(json.dumps(figures))
    elif fmt == "prometheus":
        from riaktq_cli.views.metrics import exposition
        click.echo(exposition(figures), nl=False)
    else:
        click.echo(stats.render_text(figures), nl=False)
