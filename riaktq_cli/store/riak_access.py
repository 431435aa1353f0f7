"""How the Riak store's parts reach Riak: one object they are all handed.

`RiakStore` (tasks), `RiakRecords` (records and lease), `RiakQueries` (the
operator's queries) and `OpeningNotes` each talk to Riak through a
`RiakAccess`: the client, the bucket type, the bucket names, one `call`
that turns the client's failures into store errors (decided by their type,
never their text), lazy 2i iteration, and a pool that runs up to
`parallel` calls at once. None of them reaches into another's state.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from riaktq_cli.core.errors import StoreConflict, StoreError, StoreRefused, StoreUnavailable
from riaktq_cli.riak import RiakConflict, RiakError, RiakNoBucketType, RiakRefused, RiakUnavailable
from riaktq_cli.store.riak_terms import PARALLEL


class RiakAccess:
    def __init__(self, client, bucket_type="riaktq", prefix="riaktq", parallel=PARALLEL):
        self.client = client
        self.btype = bucket_type
        self.prefix = prefix
        self.parallel = parallel
        self._pool = None
        self._pool_lock = threading.Lock()

    def bucket(self, kind):
        return f"{self.prefix}_{kind}"

    def call(self, fn, *args, **kwargs):
        """Run a client call, turning Riak failures into store errors."""
        try:
            return fn(*args, **kwargs)
        except RiakRefused as exc:
            # Final for this request, but daemons keep retrying: an operator
            # may be fixing the grant or the password right now.
            raise StoreRefused(str(exc)) from None
        except RiakUnavailable as exc:
            raise StoreUnavailable(str(exc)) from None
        except RiakConflict as exc:
            raise StoreConflict(str(exc)) from None
        except RiakError as exc:
            text = str(exc)
            if isinstance(exc, RiakNoBucketType):
                text += " (see `riaktq check`)"
            raise StoreError(text if text.startswith("riak") else f"riak: {text}") from None

    def index_iter(self, *args, **kwargs):
        """index_all with errors mapped, lazily."""
        it = self.call(self.client.index_all, *args, **kwargs)
        while True:
            try:
                item = self.call(next, it)
            except StopIteration:
                return
            yield item

    def map(self, fn, items):
        """fn over items with up to `parallel` requests in flight, in order."""
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        with self._pool_lock:     # two threads must not each start a pool
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="riak")
        return list(self._pool.map(fn, items))

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self.client.close()
