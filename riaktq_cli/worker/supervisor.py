"""`riaktq worker --count K`: K worker processes and a supervisor over them.

Each child is a plain `riaktq worker --name P-i` process, so it behaves
exactly like one started by hand; it gets the same config file and the
flags the user gave, as the user wrote them (a duration re-formatted from
a float could be refused by the child's parser). A child that dies is
restarted under the same name (it takes over its own outbox) after a
back-off that grows while it keeps dying. SIGINT/SIGTERM are passed on,
a second one too (the workers then stop at once); the supervisor exits
once every child has exited.

A child never outlives its supervisor: it asks Linux for SIGTERM when the
supervisor dies (PR_SET_PDEATHSIG; it also watches its parent pid), and
then stops as on any SIGTERM, handing back its queue. Default names carry
the short host name (`echo-web1-1`), so supervisors on two machines never
share instance names.
"""

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

from riaktq_cli.core.backoff import Backoff
from riaktq_cli.core.errors import ConfigError
from riaktq_cli.runtime.hints import join_address, split_address

log = logging.getLogger("riaktq")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
SUPERVISOR_ENV = "RIAKTQ_SUPERVISOR_PID"


class Child:
    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.proc = None
        self.started = 0.0
        self.restarts = Backoff(BACKOFF_START, BACKOFF_MAX)   # waits before a restart
        self.restart_at = 0.0

    def start(self):
        env = dict(os.environ, **{SUPERVISOR_ENV: str(os.getpid())})
        self.proc = subprocess.Popen(self.argv, env=env)
        self.started = time.monotonic()
        log.info("supervisor: started %s (pid %d)", self.name, self.proc.pid)

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass


def short_host():
    """This machine's host name up to the first dot, safe in an instance name."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]) or "host"


def instance_names(prefix, handler, count):
    """P-1..P-K; without a prefix P is HANDLER-HOST."""
    if prefix is None:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", handler.rsplit("/", 1)[-1].removesuffix(".py"))
        prefix = f"{base}-{short_host()}"
    return [f"{prefix}-{i}" for i in range(1, count + 1)]


def check_handler(spec, options):
    """Load the handler once in a handler process, as the workers will:
    HandlerError (exit 2) now rather than K children failing to start."""
    from riaktq_cli.worker.process import HandlerProcess
    probe = HandlerProcess(spec, options)
    try:
        probe.start()
    finally:
        probe.kill()


def watch_supervisor():
    """In a worker started by a supervisor: die with it. Returns the
    supervisor's pid (for the worker's own parent watch) or None."""
    text = os.environ.pop(SUPERVISOR_ENV, None)
    if not text:
        return None
    from riaktq_cli.runtime.signals import die_with_parent
    pid = int(text)
    if not die_with_parent(signal.SIGTERM, pid):
        log.warning("supervisor (pid %d) gone before this worker started; exiting", pid)
        sys.exit(1)
    return pid


def worker_argv(name, *, config_path, verbose, handler, tags, options, setting_flags, global_flags=()):
    """The child's command line. `setting_flags`: the setting flags the
    user gave, as written (`Settings.flag_argv()`), never re-formatted;
    `global_flags` those given before the subcommand (`--log-format`)."""
    argv = [sys.executable, "-m", "riaktq_cli"]
    if config_path:
        argv += ["--config", os.path.abspath(config_path)]
    if verbose:
        argv.append("-v")
    argv += list(global_flags)
    argv += ["worker", "--name", name, "--handler", handler]
    for tag in tags:
        argv += ["--tag", tag]
    for key, value in options:
        argv += ["--option", f"{key}={value}"]
    return argv + list(setting_flags)


def hint_addresses(listen, count):
    """Per child, the flags that make its hint address its own: with a
    fixed PORT, child i listens on PORT+i (one port per process); else
    nothing to add (an ephemeral port each, or off)."""
    parsed = split_address(listen)
    if parsed is None or parsed[1] == 0:
        return [[] for _ in range(count)]
    host, port = parsed
    if port + count - 1 > 65535:
        raise ConfigError(f"bad [worker] hint_listen {listen!r}: {count} instances need ports {port}-{port + count - 1}")
    return [["--hint-listen", join_address(host, port + i)] for i in range(count)]


def supervise(children, stop):
    """Keep every child running until `stop` is set; pass a stop on (and a
    second one); return the exit code once all children have exited."""
    for child in children:
        child.start()
    while not stop.is_set():
        now = time.monotonic()
        for child in children:
            if child.proc is None:
                if now >= child.restart_at:
                    child.start()
                continue
            code = child.proc.poll()
            if code is None:
                if now - child.started > STABLE_AFTER:
                    child.restarts.reset()
                continue
            child.restarts.failed()
            pause = child.restarts.delay()
            log.warning("supervisor: %s exited with %s; restarting in %.1fs", child.name, code, pause)
            child.proc = None
            child.restart_at = now + pause
        stop.wait(0.2)
    for child in children:
        child.signal(signal.SIGTERM)
    passed_urgent = False
    while any(c.proc is not None and c.proc.poll() is None for c in children):
        if not passed_urgent and getattr(stop, "urgent", lambda: False)():
            passed_urgent = True
            for child in children:
                child.signal(signal.SIGTERM)
        time.sleep(0.1)
    log.info("supervisor: all workers stopped")
    return 0
