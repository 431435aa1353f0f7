"""The one back-off helper (riaktq_cli/core/backoff.py), on a fake clock: no real sleeps."""

import threading

import pytest

from riaktq_cli.core.backoff import Backoff, sleep


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_waits_double_from_base_up_to_the_cap():
    clock = FakeClock()
    pauses = Backoff(0.5, 3.0, clock=clock)
    for _ in range(6):
        assert pauses.retry()
    assert clock.slept == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_the_values_of_the_loops_it_replaced():
    # the supervisor's restarts, the transport's node pauses, `wait`'s growth
    supervisor = Backoff(0.5, 30.0)
    assert [supervisor.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    node = Backoff(1.0, 10.0)
    assert [node.delay(n) for n in range(1, 6)] == [min(10.0, 1.0 * 2 ** (n - 1)) for n in range(1, 6)]
    grow, pause = Backoff(0.05, 1.0, factor=1.5), 0.05
    for n in range(1, 12):
        assert grow.delay(n) == pause
        pause = min(pause * 1.5, 1.0)
    assert Backoff(0.2, 1.0, factor=5).delay(1) == 0.2 and Backoff(0.2, 1.0, factor=5).delay(2) == 1.0
    assert Backoff(1.0, 10.0).delay(0) == 0.0


def test_a_reset_starts_again_from_base():
    clock = FakeClock()
    pauses = Backoff(1.0, 8.0, clock=clock)
    pauses.retry()
    pauses.retry()
    pauses.reset()
    pauses.retry()
    assert clock.slept == [1.0, 2.0, 1.0]


def test_attempts_end_the_retries_without_a_last_wait():
    clock = FakeClock()
    pauses = Backoff(0.5, 1.0, attempts=3, clock=clock)
    assert pauses.retry() and pauses.retry()
    assert not pauses.retry()
    assert pauses.exhausted and clock.slept == [0.5, 1.0]


def test_jitter_draws_within_the_fraction_below_the_wait():
    clock = FakeClock()
    low = Backoff(2.0, 2.0, jitter=0.5, clock=clock, rand=lambda: 1.0)
    high = Backoff(2.0, 2.0, jitter=0.5, clock=clock, rand=lambda: 0.0)
    low.retry()
    high.retry()
    assert clock.slept == [1.0, 2.0]


def test_a_set_stop_event_ends_the_wait_and_says_so():
    stop = threading.Event()
    stop.set()
    pauses = Backoff(3600.0, 3600.0)
    assert not pauses.retry(stop)      # returns at once: the event was set


def test_a_callable_stop_is_polled_on_the_clock():
    clock = FakeClock()
    polls = []

    def stop():
        polls.append(clock.now)
        return clock.now >= 0.1

    assert not sleep(1.0, stop, clock)
    assert clock.now == pytest.approx(0.1) and len(polls) >= 2
    assert sleep(0.12, lambda: False, clock) and clock.now == pytest.approx(0.22)


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0, jitter=1.5)
