"""Log lines on stderr: one line per event, timestamped, no tracebacks."""

import logging
import sys


def setup_logging(verbose=False):
    root = logging.getLogger("riaktq")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
