"""The long-running processes (scheduler, worker) and the instance table."""

import json
import re

import click

from riaktq_cli.cli.completion import complete_instance
from riaktq_cli.core.durations import format_duration
from riaktq_cli.core.errors import ConfigError, Incomplete
from riaktq_cli.core.output import render
from riaktq_cli.cli.options import setting_options
from riaktq_cli.cli.params import ADDRESS, IDENTIFIER, KEY_VALUE

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")


@click.command("scheduler")
@setting_options("scheduler")
@click.option("--once", is_flag=True, help="Run a single iteration and exit (exit 3 if another scheduler holds the lease).")
@click.option("--events", metavar="FILE", help="Also write each transition as a JSON line (- for stdout).")
@click.option("--metrics", "metrics_addr", type=ADDRESS, metavar="ADDR:PORT",
              help="Serve Prometheus metrics at http://ADDR:PORT/metrics while running (:PORT: every interface).")
@click.pass_obj
def scheduler_cmd(app, settings, once, events, metrics_addr):
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
    from riaktq_cli.scheduler.events import EventSink
    from riaktq_cli.runtime.logs import daemon_logging, set_context
    from riaktq_cli.scheduler.iteration import Scheduler
    from riaktq_cli.runtime.signals import stop_event_on_signals
    from riaktq_cli.runtime import hints

    daemon_logging()
    instance_timeout = settings.get("scheduler", "instance_timeout")
    schedules = app.config.schedules   # a bad [[schedule]] stops the start (exit 2)
    log_store(app.config)
    store = app.store()
    if metrics_addr is not None:
        from riaktq_cli.views import metrics
        store = metrics.serve(metrics_addr, store, instance_timeout)
    scheduler = Scheduler(
        store, instance_timeout=instance_timeout, prefetch=settings.get("scheduler", "prefetch"),
        max_attempts=settings.get("scheduler", "max_attempts"), events=EventSink(events),
        retry_delay=settings.get("scheduler", "retry_delay"),
        retry_delay_max=settings.get("scheduler", "retry_delay_max"),
        keep_finished=settings.get("scheduler", "keep_finished"),
        forget_after=settings.get("scheduler", "forget_after"), schedules=schedules,
        hints=hints.for_config(app.config, settings.get("scheduler", "hint_listen")))
    set_context(instance=scheduler.owner)
    stop = stop_event_on_signals()
    try:
        ran = scheduler.run(settings.get("scheduler", "interval"), stop=stop, once=once)
    finally:
        scheduler.events.close()
    if once and not ran:
        raise Incomplete(exit_code=3)  # another scheduler holds the lease; the log said so


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
@setting_options("worker")
@click.pass_obj
def worker_cmd(app, settings, handler, name, count, prefix, tags, options):
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
    from riaktq_cli.runtime.logs import daemon_logging

    daemon_logging()
    if (name is None) == (count is None):
        raise click.UsageError("give either --name NAME (one instance) or --count K (several)")
    if prefix is not None and count is None:
        raise click.UsageError("--prefix goes with --count")
    tags = _checked_tags(tags)
    if count is not None:
        _supervise(app, settings, handler, count, prefix, tags, options)
    _check_name(name)
    _run_worker(app, settings, name, handler, tags, options)


def log_store(config):
    """The store line (config.store_line) as the daemon's first log line."""
    import logging
    logging.getLogger("riaktq").info("%s", config.store_line())


def _checked_tags(tags):
    from riaktq_cli.core.errors import TransitionError
    from riaktq_cli.core.task import validate_tag
    try:
        return [validate_tag(t) for t in tags]
    except TransitionError as exc:
        raise click.UsageError(str(exc)) from None


def _supervise(app, settings, handler, count, prefix, tags, options):
    """`worker --count K`: K children, each `worker --name` with the same
    flags as the user wrote them; exits with the supervisor's code."""
    from riaktq_cli.worker import supervisor
    from riaktq_cli.runtime.signals import stop_event_on_signals
    names = supervisor.instance_names(prefix, handler, count)
    for n in names:
        _check_name(n)
    supervisor.check_handler(handler, dict(options))  # fail fast on a bad handler
    log_store(app.config)
    app.store()  # a clear error now if the store is unreachable
    listen = supervisor.hint_addresses(settings.get("worker", "hint_listen"), count)
    children = [supervisor.Child(n, supervisor.worker_argv(
        n, config_path=app.config_path, verbose=app.verbose, handler=handler, tags=tags,
        options=options, setting_flags=settings.flag_argv() + listen[i], global_flags=app.flag_argv()))
        for i, n in enumerate(names)]
    code = supervisor.supervise(children, stop_event_on_signals())
    if code:
        raise Incomplete(exit_code=code)  # the children's own lines said why
    raise click.exceptions.Exit(0)  # done: not on to the one-instance path


def _run_worker(app, settings, name, handler, tags, options):
    from riaktq_cli.worker import supervisor
    from riaktq_cli.worker.handler import HandlerSpec
    from riaktq_cli.runtime.signals import stop_event_on_signals
    from riaktq_cli.worker import Worker
    from riaktq_cli.runtime import hints
    supervisor_pid = supervisor.watch_supervisor()
    worker = Worker(
        app.store(), name, HandlerSpec(handler, dict(options)), tags=tags,
        heartbeat=settings.get("worker", "heartbeat"), poll=settings.get("worker", "poll"),
        time_limit=settings.get("worker", "time_limit"),
        shutdown_grace=settings.get("worker", "shutdown_grace"),
        instance_timeout=settings.get("scheduler", "instance_timeout"), supervisor_pid=supervisor_pid,
        announce=[app.config.store_line()], hints=hints.for_config(app.config, settings.get("worker", "hint_listen")))
    # Ctrl-C reaches the whole process group; a supervisor passes it on.
    worker.run(stop_event_on_signals(sigint=not supervisor_pid))


def _check_name(name):
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"bad instance name {name!r}: letters, digits and . _ : @ - only, up to 100")


INSTANCE_COLUMNS = [("name", "NAME"), ("tags", "TAGS"), ("status", "STATUS"), ("queue", "QUEUE"),
                    ("outbox", "OUTBOX"), ("heartbeat_age", "HEARTBEAT AGE"), ("current", "AT HAND"),
                    ("host", "HOST"), ("pid", "PID")]


@click.command("instances")
@click.argument("names", nargs=-1, metavar="[NAME]...", type=IDENTIFIER, shell_complete=complete_instance)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--forget", "forget", multiple=True, metavar="NAME", type=IDENTIFIER, shell_complete=complete_instance,
              help="Delete this stopped or lost instance's records now (repeatable).")
@click.pass_obj
def instances_cmd(app, names, fmt, forget):
    """List worker instances: tags, status, queue, outbox, heartbeat age.

    An instance whose heartbeat is older than the scheduler's instance
    timeout (as the running scheduler published it; the config's before any
    scheduler ran) shows as `lost`; one that shut down cleanly as `stopped`.
    Lost and stopped instances hold nothing: no queue, nothing at hand.
    The scheduler forgets them after `[scheduler] forget_after` (1d);
    --forget does it now, once their results are committed and their tasks
    rolled back (exit 1, one line, for a live instance). When assignment is
    paused (`riaktq pause`), a line on stderr says so.

    \b
    Examples:
      riaktq instances
      riaktq instances gpu-1 gpu-2 --format json
      riaktq instances --forget old-box-3
    """
    queue = app.queue(create=False)
    if forget:
        if names:
            raise click.UsageError("--forget takes the names; list or forget, not both")
        _forget(queue, forget)
        return
    rows = [row for row in queue.instances() if not names or row["name"] in names]
    _pause_note(queue)
    if fmt == "json":
        click.echo(json.dumps(rows))
        return
    for row in rows:
        row["heartbeat_age"] = format_duration(row["heartbeat_age"])
        if row["current"]:
            row["current"] = f"{row['current']} ({format_duration(row['current_for'])})"
    render(rows, INSTANCE_COLUMNS, "table")


def _forget(queue, names):
    from riaktq_cli.core.errors import Refused
    from riaktq_cli.runtime.logs import error_line
    refused = 0
    for name in dict.fromkeys(names):
        try:
            queue.forget_instance(name)
        except Refused as exc:
            refused += 1
            error_line(exc)
            continue
        click.echo(f"riaktq: forgot instance {name}", err=True)
    if refused:
        raise Incomplete()


def _pause_note(queue):
    state = queue.pause_state()
    if state is not None:
        from riaktq_cli.scheduler.pausing import describe
        click.echo(f"riaktq: {describe(state)}", err=True)
