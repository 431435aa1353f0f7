"""The scheduler lease: who may run iterations, and the fencing epoch.

One scheduler at a time (DESIGN §2). The store keeps a lease document
`{"owner", "expires", "since", "epoch"}`; on Riak several copies (siblings)
can exist after concurrent writes, so the decision takes every copy and
every reader picks the same winner: the unexpired copy with the highest
epoch, then the earliest `since` (the incumbent beats a late intruder),
then the smallest owner name (records.LeaseCopy.rank). The stores only
read and write the copies: this rule, and which documents count as
copies, is decided here and nowhere else.

Taking the lease over (as opposed to renewing it) starts a new epoch, one
above any epoch seen. The scheduler writes its epoch into every inbox and
workers ignore inboxes from an older epoch, so a scheduler that lost its
lease without knowing it yet cannot hand out work. Hence epochs only grow:
the lease document is never deleted -- a scheduler that lets go writes its
copy back expired (`released`), keeping its epoch for the next holder to
count from -- and a takeover also counts from a floor (the highest epoch
the workers' records and the inboxes show), for a store whose lease
document was deleted (by an older riaktq, which deleted it on release, or
by hand).

On a store without compare-and-set (Riak), a takeover is confirmed only
after `settle` seconds, longer than any lease write may take: a competing
write that was in flight is visible by then, and the winner rule decides.
The lease is renewed by a thread of its own, so a slow iteration does not
let it lapse; `valid()` says whether the last renewal is recent enough to
act on.

On a slow store (a Riak node with security on checks the password on every
HTTPS request: ~300 ms each) the lease's own requests eat into its term.
So a written lease counts from the moment its write was *sent* (its
`expires` too), not from before the read that preceded it nor from the
answer; the lease measures how long its fetches, writes and reads take
(`RequestTimes`), renews early enough for a renewal to land in time, waits
at least twice a write's time to settle, and when the term cannot cover its
own requests says so once, with the instance timeout that would
(`shortfall`), instead of standing by for a holder that does not exist.
"""

import collections
import logging
import threading
import time

from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import StoreError
from riaktq_cli.core.records import LeaseCopy

log = logging.getLogger("riaktq")


def _copies(docs):
    """(LeaseCopy, doc) of every document that is a lease copy. Stores
    only read and write the documents (siblings on Riak); which of them
    count, and which one holds the lease, is decided here alone."""
    pairs = ((LeaseCopy.from_dict(doc), doc) for doc in docs)
    return [(copy, doc) for copy, doc in pairs if copy is not None]


def winner(copies, now):
    """The copy every reader agrees holds the lease at `now`, or None: of
    the unexpired copies, the first by LeaseCopy.rank."""
    live = [(copy, doc) for copy, doc in _copies(copies) if copy.expires > now]
    return min(live, key=lambda pair: pair[0].rank())[1] if live else None


def decide(copies, owner, now, ttl_us, floor=0):
    """What `owner` does with the lease copies it read.

    Returns (write, doc): write False means another owner holds it and doc
    is that holder's copy; True means write doc: a renewal (same epoch and
    `since`) if `owner` holds it, else a takeover with a new epoch, above
    every copy's (expired ones too) and above `floor`.
    """
    held = winner(copies, now)
    if held is not None and held["owner"] != owner:
        return False, held
    if held is not None:
        return True, dict(held, expires=now + ttl_us)
    return True, LeaseCopy(owner, now + ttl_us, now, _top_epoch(copies, floor) + 1).to_dict()


def _top_epoch(copies, floor=0):
    """The highest epoch of any copy, expired ones too (epochs only grow)."""
    return max([copy.epoch for copy, _ in _copies(copies)] + [floor])


VALID_SHARE = 0.9        # a lease is acted on for this share of its term (valid())
RENEW_SHARE = 0.25       # renewed this often while held, as a share of the term
SETTLE_MAX = 2.0         # seconds: the longest default settle on Riak
TTL_SHARE = 0.5          # the scheduler's lease term, as a share of its instance timeout
RENEW_MIN = 0.05         # seconds: the shortest wait between renewals
HEADROOM = 1.25          # the instance timeout a shortfall suggests covers requests this much slower


class RequestTimes:
    """How long the lease's own requests took lately: the slowest of the
    last SAMPLES of each kind (fetch, write, read), so one fast answer does
    not hide a slow store."""

    SAMPLES = 8

    def __init__(self):
        self._seen = {kind: collections.deque(maxlen=self.SAMPLES) for kind in ("fetch", "write", "read")}

    def note(self, kind, seconds):
        self._seen[kind].append(max(0.0, seconds))

    def __getitem__(self, kind):
        return max(self._seen[kind], default=0.0)

    def total(self):
        """A takeover's requests: fetch, write, and the confirming read."""
        return self["fetch"] + self["write"] + self["read"]


def settle_for(ttl, settle, write):
    """The settle wait: `settle` (default: half the term, at most
    SETTLE_MAX), and at least twice a write's time, so a rival's write in
    flight has landed when the confirming read looks."""
    base = settle if settle is not None else min(ttl / 2, SETTLE_MAX)
    return max(base, 2 * write)


def covers(ttl, times, settles, settle=None):
    """Whether a term of `ttl` seconds covers the lease's own requests: a
    takeover (write, settle, confirming read) followed by the first renewal
    (fetch, write) ends within the share of the term a lease is acted on,
    and so does a renewal started a renewal period after the last."""
    renewal = times["fetch"] + times["write"]
    wait = settle_for(ttl, settle, times["write"]) if settles else 0.0
    takeover = times["write"] + wait + (times["read"] if settles else 0.0)
    return takeover + renewal <= VALID_SHARE * ttl and renewal <= (VALID_SHARE - RENEW_SHARE) * ttl


def shortest_timeout(times, settles, settle=None):
    """The shortest whole-second instance timeout whose lease term covers
    requests HEADROOM times slower than `times`."""
    slower = {kind: times[kind] * HEADROOM for kind in ("fetch", "write", "read")}
    timeout = 1
    while not covers(timeout * TTL_SHARE, slower, settles, settle) and timeout < 86400:
        timeout += 1
    return timeout


def released(copies, owner):
    """The copy `owner` writes to let go of the lease, or None if the first
    copy by the one ranking (LeaseCopy.rank, the winner's; expired copies
    too, since a release may come after its term) is not its own: that
    copy, expired. It carries the highest epoch of any copy; deleting it
    would forget the epoch, and the next takeover would start from 1 again,
    below what the workers have seen (they would ignore it)."""
    ranked = sorted(_copies(copies), key=lambda pair: pair[0].rank())
    if not ranked or ranked[0][0].owner != owner:
        return None
    return dict(ranked[0][1], expires=0)


def release(store, owner):
    """Give the lease of `store` up if `owner` holds it: its copy stays,
    expired, so the next takeover's epoch counts from it (`released`). The
    store only swaps copies; the rule is this module's."""
    store.swap_lease(lambda copies: released(copies, owner))


class Lease:
    """Holds (or waits for) the scheduler lease of one store."""

    def __init__(self, store, owner, ttl, settle=None, floor=None):
        self.store = store
        # floor(): the highest epoch seen outside the lease document (the
        # workers' records, the inboxes); asked before a takeover only.
        self.floor = floor
        self.owner = owner
        self.ttl = ttl                       # seconds a written lease lasts
        self.tick = max(0.05, ttl * RENEW_SHARE)  # renew this often while held
        # On Riak a takeover waits this long before acting (see module doc);
        # it must exceed the renewal period so an incumbent sees a rival's
        # copy and steps down first (and a write in flight: see settle_for).
        self._settle_given = settle
        self.settle = settle_for(ttl, settle, 0.0) if store.lease_needs_settle else 0.0
        self.times = RequestTimes()          # how long our own lease requests take
        self.shortfall = None                # one line when the term cannot cover them
        self.epoch = 0
        self.holder = None                   # the holder's copy, when not us
        self._confirmed = 0.0                # monotonic time of the last good write
        self._held = False
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()

    # --- state -----------------------------------------------------------
    @property
    def held(self):
        return self._held

    def valid(self):
        """True while we hold the lease with margin to act on it: until 90%
        of the lease written by the last good renewal (counted from when
        that renewal started) has passed. Nobody else can take over before
        the whole lease has passed, plus the settle time on Riak."""
        with self._lock:
            return self._held and time.monotonic() - self._confirmed < self.ttl * VALID_SHARE

    # --- one attempt ---------------------------------------------------------
    def attempt(self):
        """Take or renew the lease once; True if we hold it afterwards.
        Store errors propagate: the caller decides how to wait."""
        was_held = self._held
        floor = self._floor(now_us()) if not was_held else 0   # before the clock: not a lease request
        started = time.monotonic()
        decision = {}

        def choose(copies):
            # the term counts from here, where the write is sent (the fetch
            # before it may have taken a good part of the term already)
            decision["sent"], decision["now"] = time.monotonic(), now_us()
            write, doc = decide(copies, self.owner, decision["now"], int(self.ttl * 1e6), floor)
            decision["write"], decision["doc"] = write, doc
            return doc if write else None

        visible = self.store.swap_lease(choose)
        sent, now = decision["sent"], decision["now"]
        self.times.note("fetch", sent - started)
        if not decision["write"]:
            return self._lose(decision["doc"])
        self.times.note("write", time.monotonic() - sent)
        mine = decision["doc"]
        top = winner(visible, now) or mine
        if top["owner"] != self.owner:
            return self._lose(top)
        if not was_held and self.settle:
            # A takeover on a store without compare-and-set: let any rival
            # write land, then look again and act only if still the winner.
            self.settle = settle_for(self.ttl, self._settle_given, self.times["write"])
            time.sleep(self.settle)
            asked = time.monotonic()
            copies = self.store.read_lease()
            self.times.note("read", time.monotonic() - asked)
            top = winner(copies, now_us())
            self._check_term()
            if top is None or top["owner"] != self.owner or top.get("epoch") != mine["epoch"]:
                return self._lose(top)
        self._check_term()
        with self._lock:
            self._held = True
            self.epoch = mine["epoch"]
            self.holder = None
            self._confirmed = sent
        return True

    def _check_term(self):
        """Say once (per episode) when the term cannot cover our own
        requests, with the instance timeout that would."""
        settles = self.store.lease_needs_settle
        if covers(self.ttl, self.times, settles, self._settle_given):
            self.shortfall = None
            return
        if self.shortfall is None:
            self.shortfall = (
                f"instance_timeout {self.ttl / TTL_SHARE:g}s is too short for this store: lease requests take"
                f" {self.times.total() if settles else self.times['fetch'] + self.times['write']:.1f} s;"
                f" use at least {shortest_timeout(self.times, settles, self._settle_given)}s"
                " (or a store that answers faster)")
            log.warning("%s", self.shortfall)

    def _renew_wait(self):
        """Seconds until the next renewal: every `tick`, but early enough
        that a renewal (fetch and write, as long as they take lately) lands
        while the lease is still valid."""
        with self._lock:
            if not self._held:
                return self.tick
            left = self._confirmed + self.ttl * VALID_SHARE - time.monotonic()
        if left <= 0:
            return self.tick    # lapsed already (a failing store): nothing to save by hurrying
        return max(RENEW_MIN, min(self.tick, left - self.times["fetch"] - self.times["write"]))

    def _floor(self, now):
        """The epoch floor, read only when a takeover is possible (nobody
        holds the lease): a standby behind a live holder pays nothing."""
        if self.floor is None:
            return 0
        held = winner(self.store.read_lease(), now)
        if held is not None and held["owner"] != self.owner:
            return 0
        return self.floor()

    def _lose(self, holder):
        with self._lock:
            self._held = False
            self.holder = holder
        return False

    # --- renewal in the background -------------------------------------------
    def keep_renewed(self):
        """Start the thread that renews the lease every `tick` while held."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
            self._thread.start()

    def _renew_loop(self):
        while not self._stop.wait(self._renew_wait()):
            if not self._held:
                continue
            try:
                if not self.attempt():
                    log.warning("scheduler lease lost to %s", self.holder["owner"] if self.holder else "?")
            except StoreError as exc:
                log.debug("lease renewal failed: %s", exc)   # valid() runs out on its own

    def release(self):
        """Stop renewing and give the lease up, so a standby takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._held:
            self._held = False
            try:
                release(self.store, self.owner)
            except StoreError:
                pass


class LeaseLost(Exception):
    """The lease is no longer ours (or not confirmed recently enough to act)."""
