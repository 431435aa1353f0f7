"""Dies on purpose: input `exit N` calls os._exit(N), `segv` kills itself
with SIGSEGV, `sleep S` sleeps; anything else is echoed."""

import os
import signal
import time


def handle(task_id, data, tags, state):
    text = data.decode()
    if text.startswith("exit "):
        os._exit(int(text.split()[1]))
    if text == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if text.startswith("sleep "):
        time.sleep(float(text.split()[1]))
    return data
