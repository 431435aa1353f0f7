"""Writes every way a handler can: stdout without a newline, stderr, fd 2
directly, a Python warning; raises when the input says "raise". Returns the
input: a task that ends `done` with its input shows its output did not
fail it."""

import os
import sys
import warnings


def handle(task_id, data, tags, state):
    text = data.decode()
    print(f"partial line of {task_id}", end="")
    print(f"to stderr from {task_id}", file=sys.stderr)
    os.write(2, f"raw fd 2 from {task_id}\n".encode())
    warnings.warn(f"careful with {task_id}")
    if text == "raise":
        raise RuntimeError(f"asked to fail {task_id}")
    return data
