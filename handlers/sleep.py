"""sleep: waits, then echoes the input; for trying out timeouts and crashes.

`--option seconds=2.5` sets how long every task takes (default 1); a task
whose input is a number waits that many seconds instead.
"""

import time


def init(options):
    return {"seconds": float(options.get("seconds", 1.0))}


def handle(task_id, data, tags, state):
    try:
        seconds = float(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        seconds = state["seconds"]
    time.sleep(seconds)
    return data
