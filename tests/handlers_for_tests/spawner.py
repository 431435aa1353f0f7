"""Starts a long `sleep` in a process group of its own, writes its pid to
the task input's path, then hangs: a time limit must kill both."""

import subprocess
import time


def handle(task_id, data, tags, state):
    proc = subprocess.Popen(["sleep", "3600"], process_group=0)
    with open(data.decode(), "w") as fh:
        fh.write(str(proc.pid))
    time.sleep(3600)
