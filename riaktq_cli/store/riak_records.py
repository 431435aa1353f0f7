"""Single-writer records and the scheduler lease on Riak (a part of RiakStore).

Records (instances, inboxes) have one writer each, which keeps the vector
clock of its own last write so its writes supersede each other; readers
find them through the `written_bin` index (never by listing keys) and pick
the newest sibling by `_written`. The lease has no compare-and-set on Riak:
concurrent swaps leave siblings, which lease.py decides among.
"""

import json
import threading

from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import StoreError
from riaktq_cli.store.base import LEASE_NAME, SCHEDULER
from riaktq_cli.store.riak_terms import HIGH, JSON, decode_siblings, number_term


class RiakRecords:
    """Records and lease of RiakStore. Handed the store's RiakAccess
    (riak_access.py), whose call, map, index_iter and bucket names it uses;
    it owns the vector clocks of its own writes and the listing cache."""

    def __init__(self, riak):
        self.client, self.btype, self.bucket = riak.client, riak.btype, riak.bucket
        self._guard, self._map, self._index_iter = riak.call, riak.map, riak.index_iter
        self._vclocks = {}            # (kind, name) -> vclock of our last read/write
        self._listed = {}             # (kind, name) -> (written_bin term, doc) last listed
        self._vclock_lock = threading.Lock()

    # --- records -------------------------------------------------------------
    def _fetch_record(self, kind, name):
        obj = self._guard(self.client.fetch, self.btype, self.bucket(kind), name)
        if obj is None:
            return None, None
        docs = [d for d in decode_siblings(obj.live_siblings, f"{kind} {name!r}") if isinstance(d, dict)]
        doc = max(docs, key=lambda d: d.get("_written", 0)) if docs else None
        return doc, obj.vclock

    def get_record(self, kind, name):
        doc, vclock = self._fetch_record(kind, name)
        with self._vclock_lock:
            self._vclocks[(kind, name)] = vclock
        if doc is not None:
            doc = dict(doc)
            doc.pop("_written", None)
        return doc

    def put_record(self, kind, name, doc):
        key = (kind, name)
        with self._vclock_lock:
            known = key in self._vclocks
            vclock = self._vclocks.get(key)
        if not known:
            _, vclock = self._fetch_record(kind, name)
        self._put_record(kind, name, doc, vclock)

    def _put_record(self, kind, name, doc, vclock):
        written = now_us()
        body = dict(doc, _written=written)
        result = self._guard(self.client.store, self.btype, self.bucket(kind), name,
                             json.dumps(body, separators=(",", ":")).encode(), JSON,
                             vclock=vclock, returnbody=True,
                             indexes={"kind_bin": kind, "written_bin": f"{kind}:{number_term(written)}"})
        with self._vclock_lock:
            self._vclocks[(kind, name)] = result.vclock if result is not None else None
        return result

    def put_records(self, kind, docs):
        """The writes go out PARALLEL at a time; the first failure is raised
        after all have been tried."""
        def put(item):
            try:
                self.put_record(kind, *item)
            except StoreError as exc:
                return exc
            return None
        errors = [e for e in self._map(put, docs.items()) if e is not None]
        if errors:
            raise errors[0]

    def delete_record(self, kind, name):
        _, vclock = self._fetch_record(kind, name)
        if vclock is not None:
            self._guard(self.client.delete, self.btype, self.bucket(kind), name, vclock=vclock)
        with self._vclock_lock:
            self._vclocks.pop((kind, name), None)

    def list_records(self, kind):
        """Every record of `kind`: one 2i range query on `written_bin`
        (`<kind>:<written µs>`) says which records changed since this
        process last read them; only those are fetched again. An idle
        instance is then read once per heartbeat, not once per iteration."""
        versions = {}
        for term, name in self._index_iter(self.btype, self.bucket(kind), "written_bin",
                                           start=f"{kind}:{number_term(0)}", end=f"{kind}:{HIGH}",
                                           page_size=1000, return_terms=True):
            versions[name] = max(term, versions.get(name, ""))   # siblings list a key twice
        with self._vclock_lock:
            cached = {n: self._listed.get((kind, n)) for n in versions}
        stale = [n for n in versions if cached[n] is None or cached[n][0] != versions[n]]
        for name, (doc, _) in zip(stale, self._map(lambda n: self._fetch_record(kind, n), stale)):
            cached[name] = (versions[name], doc)
        with self._vclock_lock:
            for key in [k for k in self._listed if k[0] == kind and k[1] not in versions]:
                del self._listed[key]
            self._listed.update(((kind, n), entry) for n, entry in cached.items())
        return {n: {k: v for k, v in d.items() if k != "_written"}
                for n, (_, d) in sorted(cached.items()) if d is not None}

    # --- lease -----------------------------------------------------------------
    # Riak has no compare-and-set: two swaps can both write, leaving two
    # copies (siblings) that every reader sees; lease.py decides among them
    # and confirms a takeover only after a settle time.
    lease_needs_settle = True

    def _lease_copies(self, obj):
        # every sibling as it is: which of them are lease copies, and which
        # one holds the lease, is lease.py's to decide
        return decode_siblings(obj.live_siblings, "the scheduler lease") if obj else []

    def read_lease(self):
        return self._lease_copies(self._guard(self.client.fetch, self.btype, self.bucket(SCHEDULER), LEASE_NAME))

    def swap_lease(self, choose):
        obj = self._guard(self.client.fetch, self.btype, self.bucket(SCHEDULER), LEASE_NAME)
        copies = self._lease_copies(obj)
        doc = choose(copies)
        if doc is None:
            return copies
        stored = self._guard(self.client.store, self.btype, self.bucket(SCHEDULER), LEASE_NAME,
                             json.dumps(doc).encode(), JSON, vclock=obj.vclock if obj else None,
                             indexes={"kind_bin": SCHEDULER}, returnbody=True)
        return self._lease_copies(stored) if stored is not None else [doc]
