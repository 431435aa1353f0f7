"""shell: runs a command with the task input on stdin; stdout is the output.

`--option cmd="wc -c"` names the command, split like a shell would split it
but never run through a shell, so nothing in the task input is interpreted.
`--option timeout=30s` bounds each run. A non-zero exit fails the task with
the tail of its stderr as the reason.

The command runs in a process group of its own, and a timeout kills the
whole group, so what the command started (`sh -c 'a | b'`, a script's
children) does not outlive it. A group, not a new session: the command stays
in the worker's handler-process session, so a worker time limit or
shutdown, which kills that session, takes the command along too.
"""

import os
import shlex
import signal
import subprocess

from riaktq_cli.core.durations import parse_duration

STDERR_TAIL = 500


def init(options):
    cmd = options.get("cmd")
    if not cmd:
        raise ValueError("the shell handler needs --option cmd=COMMAND")
    argv = shlex.split(cmd)
    if not argv:
        raise ValueError("--option cmd is empty")
    timeout = options.get("timeout")
    return {"argv": argv, "timeout": parse_duration(timeout, "timeout") if timeout else None}


def handle(task_id, data, tags, state):
    try:
        proc = subprocess.Popen(state["argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, process_group=0)
    except FileNotFoundError:
        raise FileNotFoundError(f"command not found: {state['argv'][0]}") from None
    try:
        stdout, stderr = proc.communicate(data, timeout=state["timeout"])
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise TimeoutError(f"{state['argv'][0]} ran longer than {state['timeout']:g}s") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
        raise RuntimeError(f"exit status {proc.returncode}" + (f": {tail}" if tail else ""))
    return stdout


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()
