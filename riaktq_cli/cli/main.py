"""The `riaktq` command: a click group whose subcommands load on demand.

Subcommands live in `riaktq_cli/cli/commands/`; only the one being run is
imported (the commonest `riaktq open` does not even get here: see
entry.py). `main` hands every failure -- click's usage errors too, as
`UsageFailed` -- to `logs.report_failure`, shared with the fast lane: one
prefix, `riaktq: error: `; a RiaktqError is its message and its exit code;
anything else is a bug, with a traceback only under `-v`.
"""

import importlib
import importlib.util
import os
import sys

import click

from riaktq_cli.runtime.logs import report_failure
from riaktq_cli.cli.options import option_for
from riaktq_cli.config.settings import declared, resolve

# flag, else its env, else the file's [log] format (settings.resolve, as every
# setting): the first two at start-up, before the config is read, so that the
# first log lines already have their format; the file's once it is read
LOG_FORMAT = declared("log", "format")

COMMANDS = {
    "open": ("riaktq_cli.cli.commands.tasks", "open_cmd"),
    "get": ("riaktq_cli.cli.commands.tasks", "get_cmd"),
    "tasks": ("riaktq_cli.cli.commands.tasks", "tasks_cmd"),
    "rm": ("riaktq_cli.cli.commands.tasks", "rm_cmd"),
    "wait": ("riaktq_cli.cli.commands.control", "wait_cmd"),
    "purge": ("riaktq_cli.cli.commands.control", "purge_cmd"),
    "vacuum": ("riaktq_cli.cli.commands.control", "vacuum_cmd"),
    "cancel": ("riaktq_cli.cli.commands.task_changes", "cancel_cmd"),
    "pause": ("riaktq_cli.cli.commands.pause", "pause_cmd"),
    "resume": ("riaktq_cli.cli.commands.pause", "resume_cmd"),
    "scheduler": ("riaktq_cli.cli.commands.run", "scheduler_cmd"),
    "worker": ("riaktq_cli.cli.commands.run", "worker_cmd"),
    "instances": ("riaktq_cli.cli.commands.run", "instances_cmd"),
    "init": ("riaktq_cli.cli.commands.setup", "init_cmd"),
    "check": ("riaktq_cli.cli.commands.setup", "check_cmd"),
    "report": ("riaktq_cli.cli.commands.observer", "report_cmd"),
    "observe": ("riaktq_cli.cli.commands.observer", "observe_cmd"),
    "stats": ("riaktq_cli.cli.commands.observer", "stats_cmd"),
    "requeue": ("riaktq_cli.cli.commands.task_changes", "requeue_cmd"),
    "limit": ("riaktq_cli.cli.commands.limits", "limit_cmd"),
    "limits": ("riaktq_cli.cli.commands.limits", "limits_cmd"),
    "schedules": ("riaktq_cli.cli.commands.limits", "schedules_cmd"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    def _available(self, name):
        module, _ = COMMANDS[name]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx, args):
        """Also name the process for its log lines: role = the subcommand,
        instance = a worker's --name (one instance per worker process)."""
        name, cmd, rest = super().resolve_command(ctx, args)
        from riaktq_cli.runtime.logs import set_context
        set_context(role=name, instance=_option_value(rest, "--name") if name == "worker" else None)
        return name, cmd, rest


def _option_value(args, option):
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg[len(option) + 1:]
    return None


def missing_queue(cfg):
    """Raise ConfigError if `cfg` names an embedded store that does not exist."""
    if cfg.backend != "sqlite" or os.path.exists(cfg.sqlite_path):
        return
    from riaktq_cli.core.errors import ConfigError
    make = "`riaktq open`, `riaktq scheduler`, `riaktq worker` or `riaktq init` create it"
    if cfg.path is None:
        raise ConfigError(f"no queue here: no riaktq.toml and no riaktq.db in {os.getcwd()} "
                          f"({make}; or give --config PATH)")
    raise ConfigError(f"no queue at {cfg.sqlite_path} (config {cfg.path}): {make}")


class App:
    """Per-invocation context: the config (read once) and the queue.

    Commands read and change tasks through the queue (riaktq_cli/api/queue.py),
    as an application does; the daemons and `check` take its store."""

    def __init__(self, config_path, verbose, log_format=None):
        self.config_path = config_path
        self.verbose = verbose
        self.log_format = log_format  # a settings.Given from the command line, or None
        self._config = None
        self._queue = None

    @property
    def config(self):
        if self._config is None:
            from riaktq_cli.config import loading as config
            self._config = config.load(self.config_path)
            fmt, source = resolve(LOG_FORMAT, self.log_format, config=self._config)
            if source == "file":
                from riaktq_cli.runtime.logs import set_format
                set_format(fmt)
        return self._config

    def flag_argv(self):
        """The settings given before the subcommand, as the user wrote them
        (a `worker --count` child gets them on its own command line)."""
        return [LOG_FORMAT.flag, self.log_format.text] if self.log_format is not None else []

    def queue(self, create=True):
        """The configured queue. Read-only commands pass create=False: an
        embedded store that does not exist yet is then an error (exit 2)
        instead of an empty riaktq.db left behind in the wrong directory."""
        if self._queue is None:
            from riaktq_cli.api.queue import Queue
            if not create:
                missing_queue(self.config)
            self._queue = Queue.from_loaded(self.config)
        return self._queue

    def store(self, create=True):
        """The queue's store, for the scheduler, workers and health checks."""
        return self.queue(create).store

    def close(self):
        if self._queue is not None:
            self._queue.close()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="RIAKTQ_CONFIG",
              help="Config file (TOML). Default: $RIAKTQ_CONFIG, else ./riaktq.toml, "
                   "else the embedded SQLite store at ./riaktq.db.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and tracebacks on errors.")
@option_for(LOG_FORMAT)
@click.version_option(package_name="riaktq", prog_name="riaktq")
@click.pass_context
def cli(ctx, config_path, verbose, log_format):
    """riaktq: a persistent task queue on Riak KV (or embedded SQLite).

    \b
    Quick start (embedded store, nothing to set up):
      riaktq scheduler --interval 1s &          # the one scheduler
      riaktq worker --handler echo --count 3 &  # three echo workers
      riaktq open hello --in "hi" --wait        # prints: hi
      riaktq tasks                              # what is in the queue

    Every process reads the same config file; `riaktq init` writes one.
    Shell completion: see README ("Shell completion").
    """
    app = App(config_path, verbose, log_format)
    ctx.obj = app
    ctx.call_on_close(app.close)
    from riaktq_cli.runtime.logs import setup_logging
    setup_logging(verbose, resolve(LOG_FORMAT, log_format)[0] or LOG_FORMAT.default)


def main(argv=None):
    from riaktq_cli.core.errors import RiaktqError, UsageFailed
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        rc = cli.main(args=argv, prog_name="riaktq", standalone_mode=False)
    except click.exceptions.Exit as exc:
        rc = exc.exit_code  # --help, --version, and click's own ends: not failures
    except click.exceptions.Abort:
        sys.stderr.write("riaktq: interrupted\n")
        rc = 130
    except click.UsageError as exc:  # one prefix for every failure: the hint names the command
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        rc = report_failure(UsageFailed(exc.format_message() + hint))
    except click.ClickException as exc:
        failure = RiaktqError(exc.format_message())
        failure.exit_code = exc.exit_code
        rc = report_failure(failure)
    except KeyboardInterrupt:
        sys.stderr.write("riaktq: interrupted\n")
        rc = 130
    except BrokenPipeError:
        # `riaktq report | head`: the reader left; that is not an error.
        # Point stdout at /dev/null so the interpreter's last flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 0
    except Exception as exc:  # RiaktqError, or a bug: one line (and -v: the traceback)
        rc = report_failure(exc, verbose)
    sys.exit(rc or 0)
