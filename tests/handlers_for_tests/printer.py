"""Prints to stdout (and writes to fd 1) before answering: the worker's
channel to its handler process must not see any of it."""

import os
import sys


def init(options):
    print("init chatter on stdout")
    return None


def handle(task_id, data, tags, state):
    print("handler chatter on stdout", task_id)
    sys.stdout.flush()
    os.write(1, b"\x00\x00\x00\x05raw bytes on fd 1\n")
    return data.upper()
