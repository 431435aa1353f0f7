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
dozens. Depth doubles at most per iteration, so a burst ramps up quickly,
and the rate is only re-measured while the instance had work queued, so an
idle spell does not reset what it learned.
"""

import math

AUTO = "auto"
MAX = 128
SMOOTHING = 0.5


class Prefetch:
    def __init__(self, setting):
        self.fixed = None if setting == AUTO else int(setting)
        self._rate = {}       # instance -> tasks/s
        self._depth = {}      # instance -> current depth
        self._round = None    # smoothed seconds between iterations
        self._last = None

    def depth(self, name):
        if self.fixed is not None:
            return self.fixed
        return self._depth.get(name, 1)

    def observe(self, now, finished, held):
        """After an iteration at `now` (monotonic s): `finished` maps
        instance -> results committed this iteration; `held` maps instance
        -> tasks queued or at hand before the iteration. An instance with
        neither was idle: nothing to learn from it this round."""
        if self.fixed is not None:
            return
        if self._last is not None:
            gap = max(1e-3, now - self._last)
            self._round = gap if self._round is None else SMOOTHING * gap + (1 - SMOOTHING) * self._round
            for name, n_held in held.items():
                if not n_held and not finished.get(name):
                    continue   # idle: nothing to learn from this round
                rate = finished.get(name, 0) / gap
                old = self._rate.get(name)
                self._rate[name] = rate if old is None else SMOOTHING * rate + (1 - SMOOTHING) * old
                want = math.ceil(self._rate[name] * 2 * max(self._round, 0.05))
                current = self._depth.get(name, 1)
                self._depth[name] = max(1, min(MAX, want, 2 * current))
        self._last = now

    def forget(self, names):
        for name in names:
            self._rate.pop(name, None)
            self._depth.pop(name, None)
