"""shell: runs a command with the task input on stdin; stdout is the output.

`--option cmd="wc -c"` names the command, split like a shell would split it
but never run through a shell, so nothing in the task input is interpreted.
`--option timeout=30s` bounds each run. A non-zero exit fails the task with
the tail of its stderr as the reason.
"""

import shlex
import subprocess

from riaktq_cli.durations import parse_duration

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
        proc = subprocess.run(state["argv"], input=data, capture_output=True, timeout=state["timeout"])
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{state['argv'][0]} ran longer than {state['timeout']:g}s") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"command not found: {state['argv'][0]}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
        raise RuntimeError(f"exit status {proc.returncode}" + (f": {tail}" if tail else ""))
    return proc.stdout
