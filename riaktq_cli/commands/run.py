"""The long-running processes (scheduler, worker) and the instance table."""

import json
import re

import click

from riaktq_cli.completion import complete_instance
from riaktq_cli.durations import format_duration
from riaktq_cli.errors import ConfigError
from riaktq_cli.output import render
from riaktq_cli.params import ADDRESS, DURATION, KEY_VALUE, PREFETCH

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")


@click.command("scheduler")
@click.option("--interval", type=DURATION, metavar="DURATION",
              help="Time between iterations. [config: scheduler.interval, default 1s]")
@click.option("--instance-timeout", type=DURATION, metavar="DURATION",
              help="No heartbeat for this long = instance lost. [config: scheduler.instance_timeout, default 30s]")
@click.option("--prefetch", type=PREFETCH, metavar="N|auto",
              help="Tasks queued per instance at most; auto adapts it to each instance's pace."
                   " [config: scheduler.prefetch, default auto]")
@click.option("--once", is_flag=True, help="Run a single iteration and exit (exit 3 if another scheduler holds the lease).")
@click.option("--events", metavar="FILE", help="Also write each transition as a JSON line (- for stdout).")
@click.option("--metrics", "metrics_addr", type=ADDRESS, metavar="ADDR:PORT",
              help="Serve Prometheus metrics at http://ADDR:PORT/metrics while running (:PORT: every interface).")
@click.pass_obj
def scheduler_cmd(app, interval, instance_timeout, prefetch, once, events, metrics_addr):
    """Run the scheduler: commit results, assign tasks, roll back lost ones.

    Only one scheduler runs at a time: it holds a lease in the store. A
    second one stands by and takes over within the instance timeout when
    the first one dies.

    \b
    Examples:
      riaktq scheduler                       # every second, prefetch auto
      riaktq scheduler --interval 100ms --events events.jsonl
      riaktq scheduler --metrics 127.0.0.1:9464   # Prometheus scrapes /metrics
    """
    from riaktq_cli.events import EventSink
    from riaktq_cli.scheduler import Scheduler
    from riaktq_cli.logs import daemon_logging
    from riaktq_cli.signals import stop_event_on_signals

    daemon_logging()
    cfg = app.config
    interval = interval if interval is not None else cfg.get("scheduler", "interval")
    instance_timeout = instance_timeout or cfg.get("scheduler", "instance_timeout")
    store = app.store()
    if metrics_addr is not None:
        from riaktq_cli import metrics
        store = metrics.serve(metrics_addr, store, instance_timeout)
    scheduler = Scheduler(
        store,
        instance_timeout=instance_timeout,
        prefetch=prefetch or cfg.get("scheduler", "prefetch"),
        max_attempts=cfg.get("scheduler", "max_attempts"),
        events=EventSink(events))
    from riaktq_cli.logs import set_context
    set_context(instance=scheduler.owner)
    stop = stop_event_on_signals()
    try:
        ran = scheduler.run(interval, stop=stop, once=once)
    finally:
        scheduler.events.close()
    if once and not ran:
        raise click.exceptions.Exit(3)


class SpelledDuration(DURATION.__class__):
    """A duration that remembers how the user wrote it, so a supervisor
    passes `--poll 0.05ms` on as written, not re-formatted."""

    def convert(self, value, param, ctx):
        if isinstance(value, Spelled):
            return value
        seconds = super().convert(value, param, ctx)
        return Spelled(seconds, str(value))


class Spelled(float):
    def __new__(cls, seconds, text):
        value = super().__new__(cls, seconds)
        value.text = text
        return value


SPELLED = SpelledDuration()


@click.command("worker")
@click.option("--handler", required=True, metavar="HANDLER",
              help="Built-in (echo, shell, sleep, fail), a dotted module path, or a .py file.")
@click.option("--name", metavar="NAME", help="This instance's name (unique across machines).")
@click.option("--count", type=click.IntRange(min=1), metavar="K", help="Run K instances as child processes.")
@click.option("--prefix", metavar="P",
              help="With --count: instance names P-1..P-K. [default: HANDLER-HOST, HOST the short host name]")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A feature this instance offers (repeatable).")
@click.option("--option", "options", multiple=True, type=KEY_VALUE,
              help="KEY=VALUE passed to the handler's init (repeatable), e.g. cmd='wc -c'.")
@click.option("--heartbeat", type=SPELLED, metavar="DURATION", help="[config: worker.heartbeat, default 2s]")
@click.option("--poll", type=SPELLED, metavar="DURATION", help="[config: worker.poll, default 500ms]")
@click.option("--time-limit", type=SPELLED, metavar="DURATION",
              help="Longest run of a task that sets no limit of its own (open --time-limit); past it the"
                   " task fails. [config: worker.time_limit, default none]")
@click.option("--shutdown-grace", type=SPELLED, metavar="DURATION",
              help="On SIGTERM/SIGINT, how long the task at hand may still run before it is stopped and"
                   " handed back. [config: worker.shutdown_grace, default 30s]")
@click.pass_obj
def worker_cmd(app, handler, name, count, prefix, tags, options, heartbeat, poll, time_limit, shutdown_grace):
    """Run worker instances that execute tasks with a handler.

    \b
    Examples:
      riaktq worker --name echo-1 --handler echo
      riaktq worker --count 4 --handler shell --option cmd="gzip -c" --option timeout=30s
      riaktq worker --name gpu-1 --handler ./render.py --tag gpu --time-limit 10m

    Each worker runs its handler in a process of its own, which it kills
    (and replaces) when a task outlives its time limit.

    SIGINT/SIGTERM: take no more tasks and hand the queued ones back; let
    the task at hand finish within the shutdown grace, else stop it and hand
    it back too; write the outbox; exit 0. A second signal stops at once.
    """
    from riaktq_cli.errors import TransitionError
    from riaktq_cli.logs import daemon_logging
    from riaktq_cli.signals import stop_event_on_signals
    from riaktq_cli.task import check_time_limit, validate_tag

    daemon_logging()
    if (name is None) == (count is None):
        raise click.UsageError("give either --name NAME (one instance) or --count K (several)")
    if prefix is not None and count is None:
        raise click.UsageError("--prefix goes with --count")
    try:
        tags = [validate_tag(t) for t in tags]
        if time_limit is not None:
            check_time_limit(float(time_limit))
    except TransitionError as exc:
        raise click.UsageError(str(exc)) from None
    cfg = app.config
    given = {"heartbeat": heartbeat, "poll": poll, "time-limit": time_limit, "shutdown-grace": shutdown_grace}

    if count is not None:
        from riaktq_cli import supervisor
        names = supervisor.instance_names(prefix, handler, count)
        for n in names:
            _check_name(n)
        supervisor.check_handler(handler, dict(options))  # fail fast on a bad handler
        app.store()  # a clear error now if the store is unreachable
        children = [supervisor.Child(n, supervisor.worker_argv(
            n, config_path=app.config_path, verbose=app.verbose, handler=handler, tags=tags,
            options=options, given=given)) for n in names]
        raise click.exceptions.Exit(supervisor.supervise(children, stop_event_on_signals()))

    _check_name(name)
    from riaktq_cli import supervisor
    from riaktq_cli.handler import HandlerSpec
    from riaktq_cli.worker import Worker
    supervisor_pid = supervisor.watch_supervisor()
    worker = Worker(
        app.store(), name, HandlerSpec(handler, dict(options)), tags=tags,
        heartbeat=_given_or(heartbeat, cfg, "heartbeat"), poll=_given_or(poll, cfg, "poll"),
        time_limit=_given_or(time_limit, cfg, "time_limit"),
        shutdown_grace=_given_or(shutdown_grace, cfg, "shutdown_grace"),
        instance_timeout=cfg.get("scheduler", "instance_timeout"), supervisor_pid=supervisor_pid)
    stop = stop_event_on_signals()
    if supervisor_pid:
        # Ctrl-C reaches the whole process group; the supervisor passes it
        # on as SIGTERM, so taking SIGINT too would count as a second signal.
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker.run(stop)


def _given_or(value, cfg, key):
    return float(value) if value is not None else cfg.get("worker", key)


def _check_name(name):
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"bad instance name {name!r}: letters, digits and . _ : @ - only, up to 100")


INSTANCE_COLUMNS = [("name", "NAME"), ("tags", "TAGS"), ("status", "STATUS"), ("queue", "QUEUE"),
                    ("outbox", "OUTBOX"), ("heartbeat_age", "HEARTBEAT AGE"), ("current", "AT HAND"),
                    ("host", "HOST"), ("pid", "PID")]


@click.command("instances")
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=complete_instance)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def instances_cmd(app, names, fmt):
    """List worker instances: tags, status, queue, outbox, heartbeat age.

    An instance whose heartbeat is older than the scheduler's instance
    timeout (as the running scheduler published it; the config's before any
    scheduler ran) shows as `lost`; one that shut down cleanly as `stopped`.
    Lost and stopped instances hold nothing: no queue, nothing at hand.

    \b
    Examples:
      riaktq instances
      riaktq instances gpu-1 gpu-2 --format json
    """
    rows = [row for row in app.queue(create=False).instances() if not names or row["name"] in names]
    if fmt == "json":
        click.echo(json.dumps(rows))
        return
    for row in rows:
        row["heartbeat_age"] = format_duration(row["heartbeat_age"])
        if row["current"]:
            row["current"] = f"{row['current']} ({format_duration(row['current_for'])})"
    render(rows, INSTANCE_COLUMNS, "table")
