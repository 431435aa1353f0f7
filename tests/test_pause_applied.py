"""`riaktq pause` returns once the running scheduler has applied the pause:
a task opened right after it is not assigned (issue 18, defect 10). With no
scheduler running it says the next one applies it; with one that does not
confirm in time it says so and exits 1. Both stores."""

from riaktq_cli import Queue
from tests.conftest import take_lease, wait_until
from riaktq_cli.clock import now_us


def test_a_task_opened_right_after_pause_returns_is_not_assigned(procs, store, config_file):
    procs.start("scheduler", "--prefetch", "1", name="scheduler")
    procs.start("worker", "--handler", "sleep", "--name", "w1", "--tag", "gpu", name="w1")
    wait_until(lambda: store.get_record("instance", "w1"), timeout=60, message="worker up")
    with Queue.from_config(config_file) as queue:
        queue.open("warm-up", "0")      # the scheduler is iterating: it holds the lease
        wait_until(lambda: queue.get("warm-up").status == "done", timeout=60, message="warm-up ran")
        paused = procs.run("pause", "--tag", "gpu")
        assert paused.returncode == 0, paused.stderr
        assert "applied by the scheduler" in paused.stderr.decode()
        # at once: the gpu task comes first in the queue's order; unpaused, it would go first
        queue.open("render", "0", tags=["gpu"], priority=5)
        queue.open("plain", "0")
        wait_until(lambda: queue.get("plain").status == "done", timeout=60, message="the untagged task ran")
        assert queue.get("render").status == "todo"


def test_pause_without_a_scheduler_says_the_next_one_applies_it(procs, store):
    paused = procs.run("pause")
    assert paused.returncode == 0, paused.stderr
    [line] = paused.stderr.decode().splitlines()
    assert "no scheduler is running" in line and "applies the pause when it starts" in line


def test_pause_that_the_running_scheduler_does_not_confirm_exits_1(procs, store, config_file):
    held, _ = take_lease(store, "ghost:1", 600_000_000, now_us())   # holds the lease, never iterates
    assert held
    paused = procs.run("pause", "--timeout", "300ms")
    assert paused.returncode == 1
    [line] = paused.stderr.decode().splitlines()
    assert "scheduler ghost:1 has not applied it within 300ms" in line
    with Queue.from_config(config_file) as queue:
        state = queue.pause(timeout=0)
    assert (state["all"], state["applied"], state["scheduler"]) == (True, False, "ghost:1")
