"""`riaktq worker --count K`: K worker processes and a supervisor over them.

Each child is a plain `riaktq worker --name P-i` process, so it behaves
exactly like one started by hand. A child that dies is restarted under the
same name (it takes over its own outbox) after a back-off that grows while
it keeps dying. SIGINT/SIGTERM are passed on; the supervisor exits once
every child has finished its task at hand and flushed its outbox.
"""

import logging
import os
import subprocess
import sys
import time

log = logging.getLogger("riaktq")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0


class Child:
    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.proc = None
        self.started = 0.0
        self.backoff = BACKOFF_START
        self.restart_at = 0.0

    def start(self):
        self.proc = subprocess.Popen(self.argv)
        self.started = time.monotonic()
        log.info("supervisor: started %s (pid %d)", self.name, self.proc.pid)


def worker_argv(name, *, config_path, verbose, handler, tags, options, heartbeat, poll):
    argv = [sys.executable, "-m", "riaktq_cli"]
    if config_path:
        argv += ["--config", os.path.abspath(config_path)]
    if verbose:
        argv.append("-v")
    argv += ["worker", "--name", name, "--handler", handler]
    for tag in tags:
        argv += ["--tag", tag]
    for key, value in options:
        argv += ["--option", f"{key}={value}"]
    if heartbeat is not None:
        argv += ["--heartbeat", f"{heartbeat}s"]
    if poll is not None:
        argv += ["--poll", f"{poll}s"]
    return argv


def supervise(children, stop):
    """Keep every child running until `stop` is set; return the exit code."""
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
                    child.backoff = BACKOFF_START
                continue
            log.warning("supervisor: %s exited with %s; restarting in %.1fs", child.name, code, child.backoff)
            child.proc = None
            child.restart_at = now + child.backoff
            child.backoff = min(child.backoff * 2, BACKOFF_MAX)
        stop.wait(0.2)
    for child in children:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.terminate()
    for child in children:
        if child.proc is not None:
            child.proc.wait()
    log.info("supervisor: all workers stopped")
    return 0
