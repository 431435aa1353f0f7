"""`stats` and the metrics count every task that ended: also one cancelled
while todo and one failed by loss, which have no run times (sat/laf) of their
own, or only stale ones of an earlier run (issue 18, defect 8)."""

import json

from riaktq_cli import task as T
from riaktq_cli.clock import now_us, seconds_to_us

from tests.test_ops import parse_metrics


def test_stats_count_cancelled_and_lost_failures(store, procs):
    now = now_us()
    for task_id in ("cancelled", "restarted-then-cancelled", "lost", "failed"):
        assert procs.run("open", task_id, "--in", "x", *(["--retry", "1"] if "restarted" in task_id else [])
                         ).returncode == 0
    # a run that failed two hours ago and restarted: its sat/laf are stale
    two_hours_ago = now - seconds_to_us(7200)
    store.update_tasks(["restarted-then-cancelled"], lambda t: T.close(
        T.assign(t, "w1"), "w1", T.FAILED, b"boom", two_hours_ago, 1000, now=two_hours_ago)[0])
    for task_id in ("cancelled", "restarted-then-cancelled"):
        cancel = procs.run("cancel", task_id)
        assert cancel.returncode == 0, cancel.stderr
    # lost with its instance on its last attempt, as the scheduler ends it: no sat/laf
    store.update_tasks(["lost"], lambda t: T.rollback(T.assign(t, "w1"), counted=True,
                                                     default_max_attempts=1)[0])
    store.update_tasks(["failed"], lambda t: T.close(T.assign(t, "w1"), "w1", T.FAILED, b"no",
                                                     now_us(), 10)[0])
    assert {t.status for t in store.get_tasks(["cancelled", "restarted-then-cancelled", "lost",
                                               "failed"]).values()} == {T.FAILED}

    figures = json.loads(procs.run("stats", "--format", "json").stdout)
    assert figures["counts"]["failed"] == 4
    assert (figures["failed_last_hour"], figures["closed_last_hour"], figures["closed_last_minute"]) == (4, 4, 4)
    samples = parse_metrics(procs.run("stats", "--format", "prometheus").stdout.decode())
    for name in ("failed_last_hour", "closed_last_hour", "closed_last_minute"):
        assert samples[(f"riaktq_tasks_{name}", frozenset())] == 4
    text = procs.run("stats").stdout.decode()
    assert any(line.split()[-1:] == ["4"] for line in text.splitlines() if line.startswith("failed last hour"))
