"""The protocol's records, typed: what scheduler, workers and operators
write into the store's `instance/`, `inbox/` and `scheduler/` kinds.

Each record is a dataclass with one `to_dict` (exactly the dict riaktq
writes, so a worker of one release and a scheduler of the next can run side
by side during an upgrade) and one `from_dict` (which reads what any
release wrote: a key a record written before it existed takes its
default). The queries on a record are its methods, so the rules they carry
-- which runs an inbox lists as committed, whether an instance is live,
what a name holds -- are written once. protocol.py explains the protocol
itself (who writes what, fencing, the identity of a run).

Identity of a run: (task id, run number, incarnation) -- `RunKey`; a record
written before incarnations existed has None for it.
"""

import base64
from dataclasses import dataclass, field

IDLE, BUSY, STOPPED = "idle", "busy", "stopped"
RETURNED, CRASHED = "returned", "crashed"
HANDOVER_MARK = "~"


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _int(value, default=0):
    """An integer field; None and non-numbers (a hand-edited record) read as `default`."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _list(value):
    return list(value) if isinstance(value, (list, tuple)) else []


def _dict(doc):
    return doc if isinstance(doc, dict) else {}


def _text(value):
    """A short optional string field (an address); anything else reads as None."""
    return value if isinstance(value, str) and 0 < len(value) <= 300 else None


# --- runs: entries, queue items, results --------------------------------------------

@dataclass(slots=True)
class Entry:
    """An inbox entry: one run handed to an instance."""
    seq: int
    id: str
    run: int = 0
    inc: str | None = None
    data: str = ""              # the task's input, base64 ("in")
    tags: list = field(default_factory=list)
    time_limit: float | None = None

    @classmethod
    def of(cls, seq, task):
        """The entry that hands run `task.run` of `task` out under `seq`."""
        return cls(seq, task.id, task.run, task.inc, _b64(task.in_), list(task.tags), task.time_limit)

    @property
    def key(self):
        return (self.id, self.run, self.inc)

    @property
    def input(self):
        return base64.b64decode(self.data)

    def to_dict(self):
        return {"seq": self.seq, "id": self.id, "run": self.run, "inc": self.inc, "in": self.data,
                "tags": list(self.tags), "time_limit": self.time_limit}

    @classmethod
    def from_dict(cls, doc):
        return cls(doc["seq"], doc["id"], doc.get("run", 0), doc.get("inc"), doc.get("in", ""),
                   _list(doc.get("tags")), doc.get("time_limit"))


@dataclass(slots=True)
class Taken:
    """A run an instance has taken from its inbox: queued, or at hand (`since`: µs it started)."""
    id: str
    seq: int
    run: int = 0
    inc: str | None = None
    since: int | None = None

    @property
    def key(self):
        return (self.id, self.run, self.inc)

    def to_dict(self):
        doc = {"id": self.id, "seq": self.seq, "run": self.run, "inc": self.inc}
        if self.since is not None:
            doc["since"] = self.since
        return doc

    @classmethod
    def from_dict(cls, doc):
        return cls(doc["id"], doc["seq"], doc.get("run", 0), doc.get("inc"), doc.get("since"))


@dataclass(slots=True)
class Result:
    """The end of a run, in an instance's outbox. `status`: done or failed
    (closed), RETURNED (handed back unstarted or stopped by shutdown: not an
    attempt) or CRASHED (the run killed the handler process)."""
    id: str
    run: int
    inc: str | None
    seq: int
    status: str
    out: str = ""               # base64
    sat: int | None = None
    laf: int | None = None

    @classmethod
    def of(cls, entry, status, out, sat, laf):
        """The result of `entry` (an Entry or Taken) with output bytes `out`."""
        return cls(entry.id, entry.run, entry.inc, entry.seq, status, _b64(out), sat, laf)

    @property
    def key(self):
        return (self.id, self.run, self.inc)

    @property
    def output(self):
        return base64.b64decode(self.out)

    def to_dict(self):
        return {"id": self.id, "run": self.run, "inc": self.inc, "seq": self.seq, "status": self.status,
                "out": self.out, "sat": self.sat, "laf": self.laf}

    @classmethod
    def from_dict(cls, doc):
        return cls(doc["id"], doc.get("run", 0), doc.get("inc"), doc.get("seq", 0), doc.get("status"),
                   doc.get("out", ""), doc.get("sat"), doc.get("laf"))


def run_of(task):
    """The run key of a task's current run: what its entry, queue item and
    result carry as `key`."""
    return (task.id, task.run, task.inc)


# --- instance/<name> and its handovers ------------------------------------------------

@dataclass(slots=True)
class Instance:
    """`instance/<name>`, written only by the worker process holding the
    name; or a handover (`handover_of` set) stored under `<name>~<token>`."""
    name: str
    token: str | None = None
    handler: str | None = None
    tags: list = field(default_factory=list)
    host: str | None = None
    pid: int | None = None
    started: int = 0
    heartbeat: int = 0
    status: str | None = None
    taken: int = 0
    epoch: int = 0
    queue: list = field(default_factory=list)       # [Taken]
    current: Taken | None = None
    outbox: list = field(default_factory=list)      # [Result]
    replaces: str | None = None      # a dead predecessor's token
    handover_of: str | None = None
    log_lost: int = 0                # log lines and handler output its stderr could not take
    hint: str | None = None          # "host:port" its wake-up hints go to (runtime/hints.py)

    def to_dict(self):
        return {
            "name": self.name, "token": self.token, "handler": self.handler, "tags": list(self.tags),
            "host": self.host, "pid": self.pid, "started": self.started, "heartbeat": self.heartbeat,
            "status": self.status, "taken": self.taken, "epoch": self.epoch,
            "queue": [t.to_dict() for t in self.queue],
            "current": None if self.current is None else self.current.to_dict(),
            "outbox": [r.to_dict() for r in self.outbox], "replaces": self.replaces,
            **({"handover_of": self.handover_of} if self.handover_of else {}),
            **({"log_lost": self.log_lost} if self.log_lost else {}),
            **({"hint": self.hint} if self.hint else {}),
        }

    @classmethod
    def from_dict(cls, doc, name=None):
        """`name`: the record's key, for a record that lacks its own."""
        current = doc.get("current")
        return cls(doc.get("name", name), doc.get("token"), doc.get("handler"), _list(doc.get("tags")),
                   doc.get("host"), doc.get("pid"), _int(doc.get("started")), _int(doc.get("heartbeat")),
                   doc.get("status"), _int(doc.get("taken")), _int(doc.get("epoch")),
                   [Taken.from_dict(t) for t in _list(doc.get("queue"))],
                   Taken.from_dict(current) if current else None,
                   [Result.from_dict(r) for r in _list(doc.get("outbox"))],
                   doc.get("replaces"), doc.get("handover_of") or None, _int(doc.get("log_lost")),
                   _text(doc.get("hint")))

    # --- queries ---
    def is_live(self, now_us, timeout_us):
        """Not stopped, and heard from within the instance timeout."""
        return self.status != STOPPED and now_us - self.heartbeat <= timeout_us

    def gone_for(self, now_us, timeout_us):
        """µs since the instance stopped (its last write) or was lost (its
        heartbeat plus the instance timeout); None while it is live."""
        if self.is_live(now_us, timeout_us):
            return None
        return max(0, now_us - (self.heartbeat + (0 if self.status == STOPPED else timeout_us)))

    def taken_runs(self):
        """The runs it has taken and not finished: queued, then the one at hand."""
        return self.queue + ([self.current] if self.current else [])

    def held_runs(self):
        """(id, run) of every run the record shows: queued, at hand, in the outbox."""
        return {(t.id, t.run) for t in self.taken_runs()} | {(r.id, r.run) for r in self.outbox}

    def uncommitted(self, inbox):
        """Its outbox results that `inbox` does not list as committed."""
        done = inbox.committed_keys() if inbox is not None else set()
        return [r for r in self.outbox if r.key not in done]


def handover_name(name, token):
    """Where a leaving process of `name` writes its results (protocol.py, Handover)."""
    return f"{name}{HANDOVER_MARK}{token}"


def split_handovers(docs):
    """(instances, handovers): Instance records by name from a listing of
    instance dicts. Handover records are no instances, and no view or
    iteration treats them as one."""
    instances, handovers = {}, {}
    for name, doc in docs.items():
        record = Instance.from_dict(doc, name)
        (handovers if record.handover_of else instances)[name] = record
    return instances, handovers


# --- inbox/<name> -----------------------------------------------------------------

@dataclass(slots=True)
class Inbox:
    """`inbox/<name>`, written only by the scheduler. `committed`: the run
    keys of the instance's outbox results it applied; `cancel`: runs
    `riaktq cancel` stops, as (id, run, seq) (cancelling.py)."""
    seq: int = 0
    epoch: int = 0
    token: str | None = None
    entries: list = field(default_factory=list)      # [Entry]
    committed: list = field(default_factory=list)    # [(id, run, inc)]
    cancel: list = field(default_factory=list)       # [(id, run, seq)]
    hint: str | None = None    # where the scheduler that wrote it takes wake-up hints

    def to_dict(self):
        return {"seq": self.seq, "epoch": self.epoch, "token": self.token,
                "entries": [e.to_dict() for e in self.entries],
                "committed": [list(k) for k in self.committed], "cancel": [list(c) for c in self.cancel],
                **({"hint": self.hint} if self.hint else {})}

    @classmethod
    def from_dict(cls, doc):
        """`doc` may be None (no inbox yet) or from any release: an
        [id, run] committed item (written before incarnations) is a run
        without one."""
        doc = _dict(doc)
        return cls(_int(doc.get("seq")), _int(doc.get("epoch")), doc.get("token"),
                   [Entry.from_dict(e) for e in _list(doc.get("entries"))],
                   [(k[0], k[1], k[2] if len(k) > 2 else None) for k in _list(doc.get("committed"))],
                   [tuple(c) for c in _list(doc.get("cancel"))], _text(doc.get("hint")))

    # --- queries ---
    def committed_keys(self):
        """The run keys listed as committed."""
        return set(self.committed)

    def pending(self, instance):
        """Entries the instance has not taken yet (seq above its `taken`)."""
        taken = instance.taken if instance is not None else 0
        return [e for e in self.entries if e.seq > taken]

    def unstarted_runs(self, instance):
        """Runs the instance holds but has certainly not started: pending
        here or waiting in its queue. Losing them costs no attempt."""
        runs = {e.key for e in self.pending(instance)}
        if instance is not None:
            runs.update(t.key for t in instance.queue)
        return runs

    def held_task_ids(self, instance):
        """Every task id the instance holds: pending here, queued, at hand,
        or finished in its outbox and not yet committed."""
        held = {e.id for e in self.pending(instance)}
        if instance is not None:
            held.update(t.id for t in instance.taken_runs())
            held.update(r.id for r in instance.outbox)
        return held

    def queue_length(self, instance):
        """Tasks the instance has on hand: pending + queued + the one running."""
        return len(self.pending(instance)) + len(instance.taken_runs())


# --- scheduler/*: the lease ----------------------------------------------------------

@dataclass(slots=True)
class LeaseCopy:
    """One copy of `scheduler/lease` (Riak may hold several: siblings)."""
    owner: str
    expires: int
    since: int = 0
    epoch: int = 0

    def rank(self):
        """The order every reader agrees on (lease.py): highest epoch, then
        the earliest `since` (the incumbent), then the smallest owner."""
        return (-self.epoch, self.since, self.owner)

    def to_dict(self):
        return {"owner": self.owner, "expires": self.expires, "since": self.since, "epoch": self.epoch}

    @classmethod
    def from_dict(cls, doc):
        """A copy, or None for a document that is no lease copy."""
        if not isinstance(doc, dict) or not {"owner", "expires"} <= set(doc):
            return None
        return cls(doc["owner"], _int(doc.get("expires")), _int(doc.get("since")), _int(doc.get("epoch")))


# --- scheduler/*: operators' records and the scheduler's confirmations -----------------

@dataclass(slots=True)
class Pause:
    """`scheduler/pause`: what `riaktq pause` holds back."""
    all: bool = False
    tags: list = field(default_factory=list)
    since: int | None = None
    by: str | None = None
    version: int = 0

    @property
    def paused(self):
        return self.all or bool(self.tags)

    def to_dict(self):
        return {"all": self.all, "tags": list(self.tags), "since": self.since, "by": self.by,
                "version": self.version}

    @classmethod
    def from_dict(cls, doc):
        doc = _dict(doc)
        tags = doc.get("tags") if isinstance(doc.get("tags"), list) else []
        return cls(doc.get("all") is True, sorted({t for t in tags if isinstance(t, str)}), doc.get("since"),
                   doc.get("by"), doc.get("version") or 0)


@dataclass(slots=True)
class Applied:
    """`scheduler/pause_applied` and `scheduler/limits_applied`: the version
    of the operators' record the scheduler `owner` applied, and when."""
    version: int | None = None
    owner: str | None = None
    at: int | None = None

    def to_dict(self):
        return {"version": self.version, "owner": self.owner, "at": self.at}

    @classmethod
    def from_dict(cls, doc):
        doc = _dict(doc)
        return cls(doc.get("version"), doc.get("owner"), doc.get("at"))


@dataclass(slots=True)
class SchedulerSettings:
    """`scheduler/settings`: what the lease holder runs with (scheduler_settings.py)."""
    owner: str
    instance_timeout: float      # seconds
    interval: float
    prefetch: object             # a number, or "auto"
    since: int
    hint: str | None = None      # where it takes wake-up hints (runtime/hints.py)

    def to_dict(self):
        return {"owner": self.owner, "instance_timeout": self.instance_timeout, "interval": self.interval,
                "prefetch": self.prefetch, "since": self.since, **({"hint": self.hint} if self.hint else {})}

    @classmethod
    def from_dict(cls, doc):
        """The settings, or None if `doc` holds none (no scheduler published any)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("instance_timeout"), (int, float)):
            return None
        return cls(doc.get("owner"), doc["instance_timeout"], doc.get("interval"), doc.get("prefetch"),
                   doc.get("since"), _text(doc.get("hint")))


RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def format_rate(count, seconds):
    """A rate as `riaktq limit --rate` takes it: `10/m`, `5/2s`."""
    for unit, length in RATE_UNITS.items():
        if seconds == length:
            return f"{count}/{unit}"
    return f"{count}/{seconds:g}s"


@dataclass(slots=True)
class TagLimit:
    """The limits of one tag: `concurrency` (or None) and `rate` = (count, seconds) (or None)."""
    tag: str
    concurrency: int | None = None
    rate: tuple | None = None

    def to_dict(self):
        return {"concurrency": self.concurrency, "rate": list(self.rate) if self.rate else None}

    @classmethod
    def from_dict(cls, tag, doc):
        doc = _dict(doc)
        concurrency = doc.get("concurrency")
        rate = doc.get("rate")
        ok_rate = isinstance(rate, list) and len(rate) == 2 and isinstance(rate[0], int) and rate[0] > 0 \
            and isinstance(rate[1], (int, float)) and rate[1] > 0
        return cls(tag, concurrency if isinstance(concurrency, int) and concurrency >= 0 else None,
                   (rate[0], float(rate[1])) if ok_rate else None)

    def rate_text(self):
        return None if self.rate is None else format_rate(*self.rate)

    @property
    def limited(self):
        return self.concurrency is not None or bool(self.rate)


@dataclass(slots=True)
class Limits:
    """`scheduler/limits`: {tag: TagLimit} and who set them when."""
    tags: dict = field(default_factory=dict)
    version: int = 0
    by: str | None = None
    since: int | None = None

    def to_dict(self):
        return {"tags": {t: lim.to_dict() for t, lim in sorted(self.tags.items())}, "version": self.version,
                "by": self.by, "since": self.since}

    @classmethod
    def from_dict(cls, doc):
        """Tags without a limit left are dropped."""
        doc = _dict(doc)
        tags = doc.get("tags") if isinstance(doc.get("tags"), dict) else {}
        limits = {t: TagLimit.from_dict(t, d) for t, d in tags.items() if isinstance(t, str)}
        return cls({t: lim for t, lim in limits.items() if lim.limited}, doc.get("version") or 0, doc.get("by"),
                   doc.get("since"))


@dataclass(slots=True)
class LimitsUsed:
    """`scheduler/limits_used`: each rate-limited tag's assign times (µs) in its window."""
    tags: dict = field(default_factory=dict)
    at: int | None = None

    def to_dict(self):
        return {"tags": self.tags, "at": self.at}

    @classmethod
    def from_dict(cls, doc):
        doc = _dict(doc)
        tags = doc.get("tags") if isinstance(doc.get("tags"), dict) else {}
        return cls({t: [a for a in times if isinstance(a, int)] for t, times in tags.items()
                    if isinstance(times, list)}, doc.get("at"))


@dataclass(slots=True)
class ScheduleSlots:
    """`scheduler/schedule.NAME`: every slot up to `covered` (µs) is dealt
    with; `slot` and `id` name the last task opened, `at` when written."""
    covered: int
    slot: int | None = None
    id: str | None = None
    at: int | None = None

    def to_dict(self):
        return {"covered": self.covered, "slot": self.slot, "id": self.id, "at": self.at}

    @classmethod
    def from_dict(cls, doc):
        """The record, or None if there is none (a new schedule)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("covered"), int):
            return None
        return cls(doc["covered"], doc.get("slot"), doc.get("id"), doc.get("at"))
