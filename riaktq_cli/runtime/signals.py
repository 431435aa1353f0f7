"""Signals: stop requests, parent death, and killing a process's session.

SIGINT/SIGTERM → a stop flag, so daemons finish cleanly instead of dying mid-write.

The handler only sets a flag and writes one byte to a pipe. It must not
touch a lock: `threading.Event.set()` from a signal handler deadlocks when
the signal lands while the main thread is inside `Event.wait()` holding the
event's internal lock (one SIGTERM in ten hung `scheduler --interval 0s`).
`StopFlag.wait()` sleeps in `select()` on that pipe instead, so a signal
wakes it at once. A worker also registers its own wake-up pipe
(`add_wakeup_fd`), so its loop, which waits on more than the flag, wakes too.

Parent death: Linux's PR_SET_PDEATHSIG sends a signal to a process when the
thread that started it exits, which covers kill -9 of the parent. The child
sets it itself, then checks that its parent is still the one it expects
(the parent may have died before the call); `parent_alive` is the watch
that also works where prctl does not.
"""

import os
import select
import signal
import time

from riaktq_cli.runtime.logs import signal_safe_line

PR_SET_PDEATHSIG = 1


class StopFlag:
    """A stop request that signal handlers can raise safely.

    The same face as threading.Event for the daemons' loops: set(),
    is_set(), wait(timeout). `count` says how many stop requests came
    (a second signal means "stop at once")."""

    def __init__(self):
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.count = 0
        self.signal_name = None
        self._also_wake = []
        self._nudged = False

    def add_wakeup_fd(self, fd):
        """Also write a byte to `fd` (a non-blocking pipe) on every request."""
        self._also_wake.append(fd)

    def set(self):
        self.count += 1
        for fd in [self._write] + self._also_wake:
            try:
                os.write(fd, b"x")
            except (BlockingIOError, OSError):
                pass  # the pipe is full: a wake-up is already pending

    def nudge(self):
        """End a `wait()` in progress (or the next one) early, without
        asking to stop: a wake-up hint arrived (runtime/hints.py). Safe from
        any thread: a flag and a byte to the pipe."""
        self._nudged = True
        try:
            os.write(self._write, b"n")
        except (BlockingIOError, OSError):
            pass

    def urgent(self):
        """A second request: stop at once."""
        return self.count > 1

    def is_set(self):
        return self.count > 0

    def wait(self, timeout=None):
        """Sleep until set, nudged or `timeout` seconds pass; True if set."""
        if self.count:
            return True
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while not self.count and not self._nudged:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                ready, _, _ = select.select([self._read], [], [], left)
            except InterruptedError:
                continue
            if ready:
                try:
                    os.read(self._read, 512)
                except BlockingIOError:
                    pass
        self._nudged = False
        return self.count > 0


def stop_event_on_signals(quiet=False, sigint=True):
    """A StopFlag raised by SIGINT and SIGTERM (each signal counts). The
    daemons log each signal; `quiet` does not (a live view redrawing the
    screen, where the line would land in the middle of it). `sigint=False`
    ignores SIGINT: a supervisor's child, whose supervisor passes Ctrl-C
    on as SIGTERM (taking it too would count as a second signal)."""
    stop = StopFlag()

    def handler(signum, _frame):
        if stop.count < 2 and not quiet:
            stop.signal_name = signal.Signals(signum).name
            what = "stopping now" if stop.count else "finishing up"
            try:  # os.write: neither logging's locks nor stderr's buffer lock
                os.write(2, signal_safe_line(f"{stop.signal_name} received, {what}"))
            except (OSError, ValueError):
                pass
        stop.set()

    signal.signal(signal.SIGINT, handler if sigint else signal.SIG_IGN)
    signal.signal(signal.SIGTERM, handler)
    return stop


def die_with_parent(sig, parent_pid):
    """Ask Linux to send `sig` to this process when its parent dies; False
    when the parent is already gone (or not `parent_pid`): the caller exits.
    Off Linux it does nothing and relies on `parent_alive` checks."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    return parent_alive(parent_pid)


def parent_alive(parent_pid):
    """The fallback watch: our parent is still the process that started us."""
    return os.getppid() == parent_pid


def stat_fields(pid):
    """The fields of /proc/PID/stat after "pid (comm)": state ppid pgrp
    session ...; None if there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 3 else None


def process_table():
    """{pid: (state, ppid, session)} of every process in /proc; None without /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table = {}
    for entry in entries:
        fields = stat_fields(entry) if entry.isdigit() else None
        if fields is not None:  # else not a process, or gone meanwhile
            table[int(entry)] = (fields[0], int(fields[1]), int(fields[3]))
    return table


def session_members(sid):
    """Pids of the live processes in session `sid`, from /proc."""
    return [pid for pid, (_state, _ppid, session) in (process_table() or {}).items() if session == sid]


def kill_session(leader_pid):
    """SIGKILL every process of the session that `leader_pid` leads: its
    process group and any other group in it, such as a command a handler
    started in a process group of its own. Safe to call from inside that
    session: the caller's own group goes last."""
    me = os.getpid()
    for pid in session_members(leader_pid):
        if pid != me:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        os.killpg(leader_pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def pid_alive(pid):
    """Whether a process with this pid runs on this machine. A zombie (dead,
    not yet reaped by its parent: a worker killed with -9 whose supervisor
    has not looked yet) does not."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = stat_fields(pid)
    if fields is None:
        return not os.path.isdir("/proc/self")  # gone meanwhile; or no /proc (not Linux)
    return fields[0] not in (b"Z", b"X")
