"""Say once that the store is gone and once that it is back.

A daemon retries for as long as the store is unreachable; logging every
failed attempt buries the one fact an operator needs (17 s of outage once
gave 300 lines per process). An Outage logs the first failure of a run of
failures, counts the rest, and logs the recovery with the count and the
duration.
"""

import logging
import time

log = logging.getLogger("riaktq")


class Outage:
    def __init__(self, who):
        self.who = who
        self.failures = 0
        self.since = None

    def failed(self, exc, what="store unavailable"):
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s: %s, retrying: %s", self.who, what, exc)
        else:
            log.debug("%s: still failing (%d): %s", self.who, self.failures, exc)

    def ok(self):
        if self.since is not None:
            log.warning("%s: store answers again after %.1fs (%d failed attempt(s))",
                        self.who, time.monotonic() - self.since, self.failures)
            self.since = None
            self.failures = 0

    @property
    def down(self):
        return self.since is not None
