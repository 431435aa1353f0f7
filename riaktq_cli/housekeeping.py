"""The scheduler's daily work: `[scheduler] keep_finished`.

Once per UTC day the scheduler deletes done and failed tasks created longer
ago than `keep_finished`, as `riaktq purge --age` would (the same index
pages and the same status-guarded deletes). It does so a batch per
iteration (BATCH tasks, one `delete_tasks` round), so no iteration is long
and assignment goes on meanwhile however many tasks go.

The day a purge completed is kept in the store (`scheduler/housekeeping`,
written only by the lease holder): a scheduler that takes over, or one
restarted after kill -9 in the middle, finds today not done and carries on
with what is left (deleting is idempotent). A task finishing after the day's
purge waits for the next day.

A pass over the listings ends the day only if they were whole: a Riak
cluster catching up (a node down, or handing data back after it rejoined)
answers index queries that can leave tasks out. So when a pass finds
nothing more, the store is asked once (`listings_partial`: on Riak one
/stats request per node, once per pass, never per iteration); while it
says the listings may be partial the day is not marked done and another
pass starts RECHECK seconds later.
"""

import logging
import time

from riaktq_cli.clock import seconds_to_us
from riaktq_cli.store.base import SCHEDULER

log = logging.getLogger("riaktq")

RECORD = "housekeeping"
BATCH = 200
RECHECK = 300.0    # seconds between passes while listings may be partial
STATUSES = ("done", "failed")


def utc_day(now_us):
    return time.strftime("%Y-%m-%d", time.gmtime(now_us / 1e6))


class DailyPurge:
    def __init__(self, store, keep_finished, batch=BATCH, recheck=RECHECK):
        self.store, self.keep, self.batch = store, keep_finished, batch
        self.recheck_us = seconds_to_us(recheck)
        self.day = None       # the UTC day whose purge is done (read from the store once)
        self.job = None       # (day, created_before µs, statuses left) while purging
        self.next_pass = 0    # µs: no pass before (after one that may have missed tasks)
        self._partial_day = None  # the day a partial pass was last logged (once a day)

    def step(self, now, check_lease):
        """One batch of today's purge, if it is not done yet; the number
        deleted. `check_lease()` raises if the lease is not ours."""
        if self.keep is None:
            return 0
        today = utc_day(now)
        if self.job is None and now < self.next_pass:
            return 0
        if self.day is None and self.job is None:
            self.day = (self.store.get_record(SCHEDULER, RECORD) or {}).get("day")
        if self.day == today:
            return 0
        if self.job is None or self.job[0] != today:
            self.job = (today, now - seconds_to_us(self.keep) + 1, list(STATUSES))
            if self._partial_day != today:
                log.info("keep_finished: deleting done and failed tasks older than %gs", self.keep)
        _, before, left = self.job
        ids = []
        for task_id in self.store.iter_ids(status=left[0], created_before=before, page_size=self.batch):
            ids.append(task_id)
            if len(ids) == self.batch:
                break
        check_lease()
        removed = self.store.delete_tasks(ids, left[0]) if ids else 0
        if not removed:   # none left with this status (or none deletable now): the next one
            left.pop(0)
            if not left:
                self._end_pass(today, now)
        return removed

    def _end_pass(self, today, now):
        """The day is done if the listings were whole; else another pass later."""
        self.job, self.next_pass = None, now + self.recheck_us   # also if the store cannot say
        reason = self.store.listings_partial()
        if not reason:
            self._done(today)
            return
        if self._partial_day != today:
            self._partial_day = today
            log.warning("keep_finished: listings may be partial (%s): %s not marked done, another pass "
                        "in %gs", reason, today, self.recheck_us / 1e6)

    def _done(self, today):
        self.store.put_record(SCHEDULER, RECORD, {"day": today})
        self.day, self.job = today, None
        log.info("keep_finished: done for %s", today)
