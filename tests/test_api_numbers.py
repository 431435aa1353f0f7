"""Every number the Python API takes is checked in one place (api_input.seconds
and api_input.moment): nan, inf or a value past the command line's bounds is
BadInput (exit 2), never a ValueError or OverflowError from the µs arithmetic
or the store, and nothing is written."""

import math

import pytest

from riaktq_cli import BadInput, BadTasks, Queue
from riaktq_cli import task as T
from riaktq_cli.clock import now_us

from tests.test_api import finish

NOT_NUMBERS = [math.nan, math.inf, -math.inf, 1e30]


@pytest.fixture
def queue(config_file):
    with Queue.from_config(config_file) as q:
        yield q


@pytest.mark.parametrize("value", NOT_NUMBERS)
@pytest.mark.parametrize("field", ["delay", "time_limit", "retry_delay"])
def test_open_refuses_durations_that_are_not_finite_or_too_long(queue, field, value):
    with pytest.raises(BadInput) as caught:
        queue.open("a", b"x", **{field: value})
    assert caught.value.exit_code == 2
    with pytest.raises(BadTasks):
        queue.open_many([{"id": "b", field: value}])
    assert list(queue.ids()) == []


@pytest.mark.parametrize("value", [2 ** 70, -(2 ** 70), 10 ** 19])
def test_open_refuses_a_due_time_out_of_range(queue, value):
    with pytest.raises(BadInput, match="at"):
        queue.open("a", b"x", at=value)
    assert list(queue.ids()) == []
    queue.open("ok", b"x", at=now_us() + 3_600_000_000)   # a µs time in range still opens, waiting
    assert queue.get("ok").due is not None


@pytest.mark.parametrize("value", NOT_NUMBERS + [-1])
def test_ages_and_timeouts_are_checked_like_every_duration(queue, value):
    queue.open("t", b"x")
    finish(queue, "t", T.FAILED)
    calls = [lambda: queue.purge("failed", age=value), lambda: queue.cancel_where(age=value),
             lambda: list(queue.ids(age=value)), lambda: list(queue.tasks("todo", age=value, tag="x")),
             lambda: queue.wait(["t"], timeout=value)]
    for call in calls:
        with pytest.raises(BadInput):
            call()
    assert queue.get("t").status == "failed"


@pytest.mark.parametrize("kwargs", [{"created_before_us": 2 ** 70}, {"created_before_us": math.nan},
                                    {"page_size": 0}, {"page_size": math.inf}, {"page_size": 1.5}])
def test_listing_bounds_are_checked(queue, kwargs):
    with pytest.raises(BadInput):
        list(queue.ids(**kwargs))


def test_finite_numbers_in_range_still_work(queue):
    queue.open("a", b"x", delay=0.5, time_limit=1e3, retry_delay=0)
    assert queue.purge("done", age=0) == 0 and queue.cancel_where(age=1e9) == 0
    assert list(queue.ids(page_size=1, created_before_us=now_us() + 1)) == ["a"]
