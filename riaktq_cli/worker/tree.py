"""Every process a handler started, wherever it went: find them, kill them.

Killing the handler's session is not enough: a command started with
`start_new_session=True`, `setsid` or a double fork leaves the session, and
once its parent exits it is adopted by init, out of anyone's sight. Its side
effects would go on while the task is retried elsewhere.

So the handler process makes itself a child subreaper (Linux
PR_SET_CHILD_SUBREAPER, at start, before any handler code runs): an orphan
among its descendants is adopted by the handler process instead of init, so
the tree under it holds every process it ever started, whatever session or
group they moved to. To kill it all (`kill_tree`), the handler process is
stopped first (SIGSTOP: it can neither fork nor reap any more, so its tree
stays in view), then every live descendant is killed until none is left --
each one that dies hands its own children to the stopped subreaper, where
the next look finds them -- and the handler process last. What is left are
zombies: init reaps those once the handler process is gone, and the handler
process itself reaps the ones adopted while it runs (`reap_adopted`).

Where there is no prctl or /proc (not Linux), `become_subreaper` says so and
`kill_tree` kills the session, as before.
"""

import os
import signal
import time

from riaktq_cli.signals import kill_session, process_table

PR_SET_CHILD_SUBREAPER = 36
KILL_WAIT = 2.0  # seconds to chase descendants that keep appearing
REAP_EVERY = 1.0  # at most one /proc scan a second for adopted zombies

_last_reap = [0.0]


def become_subreaper():
    """Make this process the reaper of its orphaned descendants; False
    where the system cannot (not Linux)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root, table):
    """Pids under `root` in `table` (children, their children...)."""
    children = {}
    for pid, (_state, ppid, _sid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _live_others(root, table, me):
    """Live (not zombie) processes under `root` or in its session, but
    neither `root` nor the caller."""
    pids = set(descendants(root, table))
    pids.update(pid for pid, (_state, _ppid, sid) in table.items() if sid == root)
    return [pid for pid in pids if pid not in (root, me) and table[pid][0] not in (b"Z", b"X")]


def kill_tree(root, wait=KILL_WAIT):
    """SIGKILL `root` (a handler process, leader of its session), every
    process under it and the rest of its session. Called with root = this
    process (a handler process whose worker is gone), it kills the others
    and leaves itself to the caller."""
    me = os.getpid()
    if process_table() is None:
        kill_session(root)
        return
    if root != me:
        try:
            os.kill(root, signal.SIGSTOP)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + wait
    while True:
        table = process_table() or {}
        live = _live_others(root, table, me)
        if not live or time.monotonic() > deadline:
            break
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.001)
    kill_session(root)


def reap_adopted():
    """In a subreaper: reap the zombies it adopted from another session.

    Only those: a zombie child in our own session may be a process the
    handler started itself and will wait for (subprocess, multiprocessing),
    and reaping it would take its exit status away. One that left the
    session and was adopted here has nobody else to wait for it. Cheap
    when there is none (one waitid); at most one /proc scan a second.
    (A child the handler started in a new session itself and left unwaited
    past its task is reaped too: its Popen then reports exit code 0.)"""
    try:
        if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return
    except ChildProcessError:
        return
    if time.monotonic() - _last_reap[0] < REAP_EVERY:
        return  # a zombie of our own session the handler has not waited for yet
    _last_reap[0] = time.monotonic()
    table = process_table() or {}
    me, session = os.getpid(), os.getsid(0)
    for pid, (state, ppid, sid) in table.items():
        if ppid == me and state == b"Z" and sid != session:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
