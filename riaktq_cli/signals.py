"""SIGINT/SIGTERM → a stop event, so daemons finish cleanly instead of dying mid-write."""

import logging
import signal
import threading

log = logging.getLogger("riaktq")


def stop_event_on_signals():
    stop = threading.Event()

    def handler(signum, _frame):
        if not stop.is_set():
            log.info("%s received, finishing up", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
