"""Benchmarks: riaktq (SQLite and Riak stores) side by side with Huey, Celery and RQ.

    python scripts/bench [--quick] [--only GROUPS] [--out FILE]
    make bench [ARGS="--quick --only drain"]        (installs Huey first)
    python -m scripts.bench --riak-url http://host:8098 [--bucket-type riaktq]

Every workload runs on riaktq-sqlite, riaktq-riak and, in the same run on the
same machine, Huey with its SQLite storage (SqliteHuey), so that the ratios
mean something on a noisy machine. riaktq-riak is the project's Riak test
server (one process per workload), or with `--riak-url` a real node, where
the run keeps to buckets of its own prefix and deletes every object it made,
by key. Huey is installed by `make bench`; without it the Huey rows say how
to install it. Where `redis-server` is on PATH, Celery and RQ on Redis
(celery-redis, rq-redis: their defaults, K workers) stand in the drain and
latency rows, each on a redis-server the run starts and stops
(redis_tools.py); `make bench` installs celery, rq and redis, and without
them or without redis-server their rows say how to get them.

One module per workload group (`--only` takes these names):

  enqueue     tasks opened from one process, batched and one by one, and
              through `riaktq open --batch`.
  drain       N queued tasks, K worker processes, until all are done: with
              tuned flags (`drain`) and with none at all (`drain-defaults`,
              bounded in time).
  latency     open -> done p50/p95/p99 at a steady arrival rate.
  iteration   one scheduler iteration as the store grows (finished tasks,
              instance records) and the scheduler's CPU per task.
  requests    requests per task on Riak by kind, counted by the node (/stats).
  raw         raw Riak PUT (2 index entries) and GET rates, 1 and 16
              keep-alive connections: the floor the drain is compared with.
  idle        CPU of an idle worker and scheduler after they ran tasks, and
              on Riak the requests per second per idle worker (no flags, and
              the defaults before wake-up hints).
  startup     `riaktq --help` and `riaktq open` against `python -c pass`.

Output: a table and the parameters of every figure on stdout, and a JSON list
of rows {"workload", "system", "value", "unit", "params"} (see results.py)
in bench-results.json or --out FILE.

Importing this package is cheap on purpose: Huey's consumer imports
`scripts.bench.huey_app` through it.
"""
