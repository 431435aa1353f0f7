"""Adaptive prefetch (issue 9): queues sized to each instance's pace."""

from riaktq_cli.prefetch import MAX, Prefetch


def rounds(p, n, gap, finished, held, start=0.0, busy=None):
    """n rounds `gap` apart; `busy` (handler seconds) defaults to the whole round."""
    now = start
    for _ in range(n):
        p.observe(now, finished, held, busy if busy is not None else {name: gap for name in held})
        now += gap
    return now


def test_fixed_prefetch_never_moves():
    p = Prefetch(4)
    rounds(p, 10, 0.1, {"w": 100}, {"w": 4})
    assert p.depth("w") == 4


def test_a_fast_instance_ramps_up_and_a_slow_one_stays_at_one():
    p = Prefetch("auto")
    assert p.depth("fast") == p.depth("slow") == 1
    # every 50 ms: the fast one finished 40 tasks, the slow one none (1 s tasks)
    rounds(p, 12, 0.05, {"fast": 100, "slow": 0}, {"fast": 8, "slow": 1})
    assert p.depth("fast") == MAX
    assert p.depth("slow") == 1


def test_depth_grows_at_most_twofold_per_round():
    p = Prefetch("auto")
    rounds(p, 2, 0.05, {"w": 1000}, {"w": 1})
    assert p.depth("w") == 2


def test_an_idle_spell_starts_at_one_and_fast_work_resumes_what_was_learned():
    """Issue 18: what an instance learned before an idle spell is the pace
    of work that is gone. After the spell it queues one task; a round that
    shows it starved (fast work again) brings the learned depth back at once."""
    p = Prefetch("auto")
    now = rounds(p, 12, 0.05, {"w": 40}, {"w": 8})
    learned = p.depth("w")
    assert learned > 4
    now = rounds(p, 50, 1.0, {}, {"w": 0}, start=now)
    assert p.depth("w") == 1
    p.observe(now, {"w": 1}, {"w": 0}, {"w": 0.001})   # starved: it finished its one at once
    assert p.depth("w") == learned


def test_after_an_idle_spell_slow_work_learns_afresh():
    """A burst of instant tasks, an idle spell, then 3 s tasks: the depth
    stays 1 (before: the burst's depth, so every long task queued here)."""
    p = Prefetch("auto")
    now = rounds(p, 12, 0.05, {"w": 100}, {"w": 8})
    assert p.depth("w") == MAX
    now = rounds(p, 5, 0.1, {}, {"w": 0}, start=now)
    for _ in range(30):   # one long task at hand, none finished: 100 ms rounds for 3 s
        now = rounds(p, 1, 0.1, {}, {"w": 1}, start=now)
        assert p.depth("w") == 1


def test_an_instance_that_finished_everything_it_held_still_counts_as_busy():
    """A fast worker has emptied its queue by the time the scheduler looks:
    what it finished is the measure, not what it still holds."""
    p = Prefetch("auto")
    rounds(p, 12, 0.05, {"w": 100}, {"w": 0})
    assert p.depth("w") == MAX


def test_a_starved_instance_grows_fourfold_a_busy_one_follows_its_rate():
    """Each round (1 s) the instance finishes all it held and is left with
    nothing: with its handler busy a few ms (fast tasks, the queue too short
    for the round trip) its depth quadruples; busy the whole round (long
    tasks) its rate sizes it: one queued behind the running one."""
    fast, slow = Prefetch("auto"), Prefetch("auto")
    now = 0.0
    for _ in range(3):
        d = fast.depth("w")
        fast.observe(now, {"w": d}, {"w": 0}, {"w": 0.001 * d})
        slow.observe(now, {"w": 1}, {"w": 0}, {"w": 1.0})
        now += 1.0
    assert fast.depth("w") == 16       # 1 -> 4 -> 16 (the first round only starts the clock)
    assert slow.depth("w") == 2
