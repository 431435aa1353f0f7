"""The Huey side of the benchmark: a SqliteHuey with one echo task.

The benchmark builds one Huey per workload with `make(path)`; the consumer
(`huey_consumer scripts.bench.huey_app.huey -w 4 -k process`) imports this
module with RIAKTQ_BENCH_HUEY_DB naming the same file, so both sides register
the same task under the same name. The task is the counterpart of riaktq's
`echo` handler: it returns its input, which Huey stores as the task's result
(as riaktq stores `out`), so "done" means "result stored" on both sides.
"""

import os

from huey import SqliteHuey


def make(filename):
    huey = SqliteHuey("bench", filename=filename)

    @huey.task(name="echo")
    def echo(data):
        return data

    return huey, echo


if os.environ.get("RIAKTQ_BENCH_HUEY_DB"):
    huey, echo = make(os.environ["RIAKTQ_BENCH_HUEY_DB"])
