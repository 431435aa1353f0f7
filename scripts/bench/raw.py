"""Raw Riak rates: the floor a task queue on Riak is measured against.

PUT of a task-sized JSON object with 2 index entries (as a task carries)
and GET of those objects, from this Python process over keep-alive
connections, with 1 connection and with 16 (threads sharing one pool), on
the same target and in the same run as the drain. Keys are fresh for each
PUT pass (a second write without a vector clock would make siblings), in a
bucket of the workspace's own prefix, and deleted afterwards.
"""

import json

from scripts.bench.procs import log
from scripts.bench.results import HUEY, RIAK, RIAK_PB, SQLITE, Figure
from scripts.bench.sites import Workspace

GROUP = "raw"
CONNECTIONS = (1, 16)
FIGURES = [
    Figure("raw-put", "requests/s", "raw Riak PUT, 2 index entries", vary="connections", variants=CONNECTIONS),
    Figure("raw-get", "requests/s", "raw Riak GET", vary="connections", variants=CONNECTIONS),
]
BODY = json.dumps({"id": "t00000000", "status": "todo", "priority": 0, "retry": 0, "assignee": None,
                   "in": "eA==", "out": None, "sat": None, "laf": None, "cat": 1700000000000000,
                   "tags": [], "rev": 1}).encode()


def run(ctx):
    ctx.riaktq_run(["raw-put", "raw-get"], RIAK, lambda s: _raw(ctx))
    ctx.riaktq_run(["raw-put", "raw-get"], RIAK_PB, lambda s: _raw_pb(ctx))
    for name in ("raw-put", "raw-get"):
        ctx.results.na(name, SQLITE, "a Riak figure")
        ctx.results.na(name, HUEY, "a Riak figure")


def _raw(ctx):
    ws = Workspace(ctx, RIAK, "raw")
    http, btype, bucket = ws.http, ws.btype, f"{ws.prefix}_raw"
    try:
        _rates(ctx, RIAK, ws, "urllib3 keep-alive, one thread per connection",
               lambda key, indexes: http.put(btype, bucket, key, BODY, indexes),
               lambda key: http.get(btype, bucket, key))
    finally:
        ws.close()


def _raw_pb(ctx):
    """The same PUTs and GETs over Riak's PB API, through riaktq's own PB client (pooled,
    one thread per connection): the PB counterpart of the urllib3 figures."""
    from riaktq_cli.riak import RiakClient
    ws = Workspace(ctx, RIAK_PB, "raw-pb")
    btype, bucket = ws.btype, f"{ws.prefix}_raw"
    client = RiakClient([ws.url], pool_size=max(CONNECTIONS), timeout=30.0)
    try:
        _rates(ctx, RIAK_PB, ws, "riaktq PB client, one thread per connection",
               lambda key, indexes: client.store(btype, bucket, key, BODY, indexes=indexes),
               lambda key: client.fetch(btype, bucket, key))
    finally:
        client.close()
        ws.close()


def _rates(ctx, system, ws, client_text, put, get):
    """PUT rates with 1 and 16 connections (fresh keys each), then GET rates of the keys."""
    n = 200 if ctx.quick else 2000
    params = {"requests": n, "client": client_text, "body_bytes": len(BODY)}
    written = {}
    for conns in CONNECTIONS:
        keys = [f"p{conns}-{i:06d}" for i in range(n)]
        ws.raw_keys.extend(keys)
        took = ws.http.parallel(lambda key: put(key, {"status_bin": "todo", "statuscat_bin": f"todo:{key}"}),
                                keys, conns)
        written[conns] = keys
        ctx.results.add("raw-put", system, n / took, params, variant=conns)
        log(f"raw PUT {system}, {conns} connection(s): {n / took:,.0f}/s")
    for conns in CONNECTIONS:
        took = ws.http.parallel(get, written[CONNECTIONS[0]], conns)
        ctx.results.add("raw-get", system, n / took, params, variant=conns)
        log(f"raw GET {system}, {conns} connection(s): {n / took:,.0f}/s")
