"""How many tasks each instance gets queued ahead: fixed, or adapted.

A fixed prefetch is a trade-off the user should not have to make: 1 keeps
long tasks from piling up on one instance but leaves a fast worker waiting
a whole scheduler round trip between tasks; 128 drains fast tasks at full
speed but parks a backlog of long ones behind a single instance.

`auto` (the default) sizes each instance's queue to what it finishes in
two scheduler rounds: depth = ceil(rate × 2 × round), between 1 and MAX,
where `rate` is the instance's recent finishing rate (tasks/s, smoothed)
and `round` the recent time between iterations. A worker on 1 s tasks
keeps one task queued behind the running one; a worker on 1 ms tasks gets
dozens. Depth at most doubles per iteration while the instance still has work on
hand; a starved instance (finished all it held, nothing left, its handler
busy less than half the round) grows fourfold, since its depth rather than
its speed bounded the round: on Riak
a cold start at 50 tasks/s then reaches steady latency within about two
seconds instead of eight. The rate is only re-measured while the instance had work queued.

An idle spell (IDLE_ROUNDS rounds holding nothing) puts the depth back to
1: what it learned was the pace of work that is gone, and the next work may
be slow. A worker that drained thousands of instant tasks would otherwise
take the first 128 long tasks that come next into its queue, while an idle
newcomer gets one (issue 18: 8 tasks of 3 s took 24 s on two workers
instead of 12). The learned depth is kept as a promise: the first round
after the spell that shows the instance starved (fast work again) restores
it at once, so a recurring burst of fast work does not ramp up from 1 each
time.
"""

import math

AUTO = "auto"
MAX = 128
SMOOTHING = 0.5
DRY_GROWTH = 4   # an instance that ran dry: its queue was too short
IDLE_ROUNDS = 3  # rounds holding nothing after which the learned depth is only a promise


class Prefetch:
    def __init__(self, setting):
        self.fixed = None if setting == AUTO else int(setting)
        self._rate = {}       # instance -> tasks/s
        self._depth = {}      # instance -> current depth
        self._round = None    # smoothed seconds between iterations
        self._last = None
        self._idle = {}       # instance -> rounds in a row it held nothing
        self._resume = {}     # instance -> depth learned before an idle spell

    def depth(self, name):
        if self.fixed is not None:
            return self.fixed
        return self._depth.get(name, 1)

    def observe(self, now, finished, held, busy):
        """After an iteration at `now` (monotonic s): `finished` maps
        instance -> results committed this iteration; `held` maps instance
        -> tasks queued or at hand before the iteration; `busy` maps
        instance -> seconds its handler ran for those results. An instance
        with neither was idle: nothing to learn from it this round."""
        if self.fixed is not None:
            return
        if self._last is not None:
            gap = max(1e-3, now - self._last)
            self._round = gap if self._round is None else SMOOTHING * gap + (1 - SMOOTHING) * self._round
            for name, n_held in held.items():
                if not n_held and not finished.get(name):
                    self._idled(name)   # idle: nothing to learn from this round
                    continue
                self._idle.pop(name, None)
                rate = finished.get(name, 0) / gap
                old = self._rate.get(name)
                self._rate[name] = rate if old is None else SMOOTHING * rate + (1 - SMOOTHING) * old
                current = self._depth.get(name, 1)
                if not n_held and busy.get(name, 0.0) < gap / 2:
                    # Starved: it finished everything it held, has nothing on
                    # hand, and its handler ran less than half the round. Its
                    # depth, not its speed, bounded the round (on Riak a slot
                    # takes one to two rounds to come back), so the measured
                    # rate understates it: grow fourfold. (A worker on long
                    # tasks that just finished one was busy all along: its
                    # rate, not this, sizes its queue.)
                    self._depth[name] = min(MAX, max(DRY_GROWTH * current, self._resume.pop(name, 1)))
                else:
                    self._resume.pop(name, None)   # slow work after the spell: learn afresh
                    want = math.ceil(self._rate[name] * 2 * max(self._round, 0.05))
                    self._depth[name] = max(1, min(MAX, want, 2 * current))
        self._last = now

    def _idled(self, name):
        """One more round holding nothing; after IDLE_ROUNDS, depth 1 and
        the rate forgotten, the depth kept to resume (see the docstring)."""
        self._idle[name] = self._idle.get(name, 0) + 1
        if self._idle[name] == IDLE_ROUNDS and self._depth.get(name, 1) > 1:
            self._resume[name] = self._depth.pop(name)
            self._rate.pop(name, None)

    def forget(self, names):
        for name in names:
            for learned in (self._rate, self._depth, self._idle, self._resume):
                learned.pop(name, None)
