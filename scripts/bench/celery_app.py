"""The Celery side of the benchmark: Redis as broker and result backend, one echo task.

The bench builds the app with `make(url)` to enqueue; the worker (`celery -A
scripts.bench.celery_app worker --concurrency 4 --pool prefork`) imports this
module with RIAKTQ_BENCH_REDIS_URL naming the same server. The task is RQ's
echo function (rq_app.echo), the counterpart of riaktq's `echo` handler: it
returns its input, which the result backend stores (as riaktq stores `out`),
so "done" means "result stored" on every side. Nothing else is configured:
Celery's defaults.
"""

import os

from celery import Celery

from scripts.bench.rq_app import echo as _echo


def make(url):
    """(app, echo task) on the Redis at `url`."""
    app = Celery("bench", broker=url, backend=url)
    return app, app.task(name="echo")(_echo)


if os.environ.get("RIAKTQ_BENCH_REDIS_URL"):
    app, echo = make(os.environ["RIAKTQ_BENCH_REDIS_URL"])
