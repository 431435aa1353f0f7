"""The worker's handle on its handler process (worker/child.py).

Started with subprocess (fork+exec, so none of the worker's threads or locks
are copied into it) in a session of its own, as a child subreaper: a time
limit, a cancel or a shutdown kills the handler and every process it
started, even one that left the session (worker/tree.py), and never the
worker. Writes to the child are non-blocking and buffered: a
child stuck in a handler that holds the GIL stops reading, and the worker
must still be free to kill it when its time is up.
"""

import os
import select
import signal
import subprocess
import sys
import time

from riaktq_cli.errors import HandlerError, RiaktqError
from riaktq_cli.logs import log_format
from riaktq_cli.signals import kill_session
from riaktq_cli.worker import channel
from riaktq_cli.worker.tree import kill_tree

# The package root, so that the child imports this riaktq_cli even when the
# worker was started from a source tree that is not installed.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class StartFailed(RiaktqError):
    """The handler process died or went silent before it was ready."""


def describe_exit(returncode):
    """How a process ended, for a task's `out` and the log."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class HandlerProcess:
    def __init__(self, spec, options, instance=None):
        self.spec = spec
        self.options = dict(options or {})
        self.instance = instance      # the worker's name, for the handler's JSON log lines
        self.proc = None
        self.reader = None
        self._out = bytearray()
        self.tags = []

    @property
    def pid(self):
        return self.proc.pid

    @property
    def read_fd(self):
        return self.reader.fd

    @property
    def write_fd(self):
        return self.proc.stdin.fileno()

    def start(self, cancelled=lambda: False, tick=lambda: None):
        """Spawn, send init, wait for "ready". HandlerError for a handler
        that does not load (the user's mistake); StartFailed otherwise.
        Returns False if `cancelled()` turned true first."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "riaktq_cli.worker.child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True, env=env)
        self.reader = channel.FrameReader(self.proc.stdout.fileno())
        os.set_blocking(self.write_fd, False)
        self.send(("init", self.spec, self.options, os.getpid(),
                   {"format": log_format(), "instance": self.instance}))
        while True:
            tick()
            if cancelled():
                self.kill()
                return False
            self.flush()
            ready, _, _ = select.select([self.read_fd], [], [], 0.2)
            if not ready:
                continue
            messages, eof = self.reader.read()
            for message in messages:
                if message[0] == "ready":
                    self.tags = list(message[1])
                    return True
                if message[0] == "error":
                    self.kill()
                    raise HandlerError(message[1])
            if eof:
                code = self.kill()
                raise StartFailed(f"handler process {describe_exit(code)} before it was ready")

    def send(self, message):
        """Queue a message; `flush` writes what the pipe takes now."""
        self._out += channel.encode(message)
        self.flush()

    def pending_output(self):
        return bool(self._out)

    def flush(self):
        while self._out:
            try:
                written = os.write(self.write_fd, self._out)
            except BlockingIOError:
                return
            except OSError:  # the child is gone; its EOF tells the rest
                self._out.clear()
                return
            del self._out[:written]

    def read(self):
        return self.reader.read()

    def kill(self):
        """Kill the child, every process it started (worker/tree.py) and
        its whole session; reap it; its return code."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            kill_tree(self.proc.pid)
        return self.reap()

    def reap(self, timeout=10.0):
        """Wait for the child (it is dead or dying); its return code.

        Before the child is reaped (while its pid is still its own), the
        rest of its session is killed: a command the handler started in a
        group of its own must not outlive it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    break
            except ChildProcessError:  # already reaped
                break
            time.sleep(0.005)
        kill_session(self.proc.pid)
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return self.proc.returncode
