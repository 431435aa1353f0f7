"""The benchmark's own plain HTTP to a Riak node: counters, raw rates, clean-up.

Kept apart from riaktq's Riak client on purpose: the raw rates are the floor
riaktq's store is compared with, so they must not go through it, and the
clean-up must work whatever state the store code is in. urllib3 (a riaktq
dependency already) with keep-alive connections, as any Python client would.

Request counts come from the node itself: `GET /stats` has totals that only
grow, `node_gets_total`, `node_puts_total` (coordinated GET/PUT FSMs; a
DELETE is a tombstone PUT and a reaping GET) and `index_fsm_create` (2i
queries), plus `list_fsm_create` (key listings, which must stay at 0). The
project's test server serves the same names.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

COUNTERS = {"get": "node_gets_total", "put": "node_puts_total", "2i": "index_fsm_create",
            "list": "list_fsm_create"}


class RiakHTTP:
    """One node's URL, a keep-alive connection pool of `connections`."""

    def __init__(self, url, connections=16, timeout=30.0):
        import urllib3
        self.url = url.rstrip("/")
        self.connections = connections
        self.http = urllib3.PoolManager(num_pools=2, maxsize=connections, block=True,
                                        timeout=urllib3.Timeout(total=timeout), retries=False)

    def request(self, method, path, body=None, headers=None, ok=(200, 204)):
        resp = self.http.request(method, self.url + path, body=body, headers=headers or {})
        if resp.status not in ok:
            text = resp.data[:200].decode(errors="replace").strip()
            raise RuntimeError(f"{method} {path}: HTTP {resp.status} {text}")
        return resp

    def close(self):
        self.http.clear()

    # --- checks and counters -------------------------------------------------
    def preflight(self, bucket_type):
        """None when the node answers and the bucket type allows siblings,
        else (exit code, one line saying what is wrong)."""
        import urllib3
        try:
            self.request("GET", "/ping")
            resp = self.request("GET", f"/types/{quote(bucket_type, safe='')}/props", ok=(200, 404))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return 3, f"riak node {self.url} is unreachable ({type(exc).__name__}: {exc})"
        except RuntimeError as exc:
            return 3, f"riak node {self.url}: {exc}"
        if resp.status == 404:
            return 2, (f"riak node {self.url}: no bucket type {bucket_type!r}; create it with:"
                       f" riak admin bucket-type create {bucket_type} '{{\"props\":{{\"allow_mult\":true}}}}'"
                       f" && riak admin bucket-type activate {bucket_type}")
        props = json.loads(resp.data).get("props", {})
        if props.get("allow_mult") is not True:
            return 2, f"riak node {self.url}: bucket type {bucket_type!r} needs allow_mult=true"
        return None

    def counters(self):
        """{"get", "put", "2i", "list"}: the node's totals now (None if it
        does not report one)."""
        stats = json.loads(self.request("GET", "/stats", headers={"Accept": "application/json"}).data)
        return {kind: stats.get(name) for kind, name in COUNTERS.items()}

    # --- objects -------------------------------------------------------------------
    def _key_path(self, btype, bucket, key):
        return f"/types/{quote(btype, safe='')}/buckets/{quote(bucket, safe='')}/keys/{quote(key, safe='')}"

    def put(self, btype, bucket, key, body, indexes=None):
        headers = {"Content-Type": "application/json"}
        for name, value in (indexes or {}).items():
            headers[f"X-Riak-Index-{name}"] = value
        self.request("PUT", self._key_path(btype, bucket, key), body=body, headers=headers)

    def get(self, btype, bucket, key):
        return self.request("GET", self._key_path(btype, bucket, key), ok=(200, 300)).data

    def delete(self, btype, bucket, key):
        """Delete by key (no vector clock: the node reads the current one)."""
        self.request("DELETE", self._key_path(btype, bucket, key), ok=(204, 404))

    def parallel(self, fn, items, connections):
        """fn(item) for each item from `connections` threads sharing the pool;
        returns the seconds it took. The first error stops the run."""
        items = list(items)
        if connections <= 1:
            started = time.perf_counter()
            for item in items:
                fn(item)
            return time.perf_counter() - started
        lock = threading.Lock()
        it = iter(items)

        def loop():
            while True:
                with lock:
                    item = next(it, None)
                if item is None:
                    return
                fn(item)

        with ThreadPoolExecutor(connections) as pool:
            started = time.perf_counter()
            futures = [pool.submit(loop) for _ in range(connections)]
            for f in futures:
                f.result()
            return time.perf_counter() - started


def counters_delta(before, after):
    """after - before per kind, None where the node reports no such counter."""
    return {k: (None if before.get(k) is None or after.get(k) is None else after[k] - before[k])
            for k in COUNTERS}
