"""The RQ side of the benchmark: one echo function, the counterpart of
riaktq's `echo` handler. RQ stores its return value as the job's result
(RQ's defaults: kept 500 s), so "done" means "result stored" on every side.
Celery registers the same function as its task (celery_app.py). The bench
enqueues it by reference; `rq worker` imports it by its dotted name
(`scripts.bench.rq_app.echo`), with the project root on PYTHONPATH."""


def echo(data):
    return data
