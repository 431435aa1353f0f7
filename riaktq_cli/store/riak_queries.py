"""The operator's queries on Riak (a part of RiakStore): ids by status and
creation time, counts by status, the oldest task of a status, throughput.

All of them read the `statuscat_bin`, `status_bin` and `finished_bin`
indexes page by page, so memory stays bounded however many tasks match;
none runs on the per-task or per-iteration path.
"""

import heapq

from riaktq_cli.store.riak_terms import HIGH, number_term
from riaktq_cli.core.task import DONE, FAILED, STATUSES


class RiakQueries:
    """Queries of RiakStore. Handed the store's RiakAccess (riak_access.py),
    whose call, index_iter and bucket names it uses; it keeps no state."""

    def __init__(self, riak):
        self.client, self.btype, self.bucket = riak.client, riak.btype, riak.bucket
        self._guard, self._index_iter = riak.call, riak.index_iter

    def _status_cat_iter(self, status, created_before, page_size):
        end = HIGH if created_before is None else number_term(max(0, created_before - 1))
        if created_before is not None and created_before <= 0:
            return
        for term, key in self._index_iter(self.btype, self.bucket("task"), "statuscat_bin",
                                          start=f"{status}:{number_term(0)}", end=f"{status}:{end}",
                                          page_size=page_size, return_terms=True):
            yield int(term.rsplit(":", 1)[1]), key

    def iter_ids(self, status=None, created_before=None, page_size=1000):
        statuses = [status] if status is not None else list(STATUSES)
        streams = [self._status_cat_iter(s, created_before, page_size) for s in statuses]
        last = None
        for cat_key in heapq.merge(*streams):
            if cat_key != last:   # a task with siblings can carry two terms
                last = cat_key
                yield cat_key[1]

    def _count_distinct(self, *args, **kwargs):
        """Count the keys of a paginated 2i query in constant memory.

        Paginated results come sorted by key for an exact match, so a key
        that siblings list twice is next to itself. On a range a key with
        two terms (siblings not yet resolved by a read) can count twice:
        a transient over-count of a statistic, never a correctness issue.
        """
        count, last = 0, None
        for key in self._index_iter(*args, **kwargs):
            if key != last:
                count += 1
                last = key
        return count

    def count_by_status(self):
        return {status: self._count_distinct(self.btype, self.bucket("task"), "status_bin", status,
                                             page_size=10000)
                for status in STATUSES}

    def oldest_cat(self, status):
        page = self._guard(self.client.index, self.btype, self.bucket("task"), "statuscat_bin",
                           start=f"{status}:{number_term(0)}", end=f"{status}:{HIGH}",
                           max_results=1, return_terms=True)
        return int(page.results[0][0].rsplit(":", 1)[1]) if page.results else None

    def count_finished_since(self, since_us, status=None):
        return sum(self._count_distinct(self.btype, self.bucket("task"), "finished_bin",
                                        start=f"{s}:{number_term(max(0, since_us))}", end=f"{s}:{HIGH}",
                                        page_size=10000)
                   for s in ([status] if status else [DONE, FAILED]))
