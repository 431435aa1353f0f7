"""Starts a grandchild that leaves the handler's session and its parent
(a double fork with setsid), as a daemonizing command does; the grandchild
writes its pid to the task input's path and then a heartbeat beside it
every 50 ms. The handler then hangs: a time limit or a cancel must kill the
grandchild too."""

import os
import time


def handle(task_id, data, tags, state):
    path = data.decode()
    if os.fork() == 0:          # the middle process: leaves the session, forks, exits
        os.setsid()
        if os.fork() == 0:      # the grandchild, orphaned at once
            with open(path + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.rename(path + ".tmp", path)
            while True:
                with open(path + ".beat", "w") as fh:
                    fh.write(str(time.time()))
                time.sleep(0.05)
        os._exit(0)
    time.sleep(3600)
