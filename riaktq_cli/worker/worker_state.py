"""The worker main thread's small pieces of state, each named for what it tracks.

`Worker` (worker/instance.py) decides; these remember: when its record is
due (`RecordSchedule`), when its inbox was read and whether the store can
say cheaply that someone wrote (`InboxWatch`), how far it is in stopping
(`Stopping`), and whether another process was seen under its name
(`NameWatch`). Times are monotonic seconds, passed in by the worker.
"""


class RecordSchedule:
    """When the instance record is written next: every heartbeat, and soon
    after results come in. Results not yet in the stored record are what
    makes a write due before the heartbeat; taking entries, trimming
    committed results or a new epoch change the record too, but nothing
    waits for them: they go out with the next write, so a round of work
    costs one write, not one when the entries come and one when their
    results do."""

    def __init__(self):
        self.unsent = True        # results (or a first record) not yet written
        self.unsent_since = 0.0   # when the oldest result not yet written came
        self.last_write = 0.0

    def results_came(self, now):
        """The first result not yet written came at `now`."""
        self.unsent, self.unsent_since = True, now

    def write_at_once(self):
        self.unsent, self.unsent_since = True, 0.0

    def written(self, now):
        self.unsent = False
        self.last_write = now


class InboxWatch:
    """When the inbox was last read, when work last came or went, and --
    where the store can tell cheaply that someone wrote (SQLite's
    data_version) -- the version seen at that read; whether a wake-up hint
    asks for a read, and where the scheduler takes hints (from the inbox)."""

    def __init__(self):
        self.last_poll = 0.0
        self.last_work = 0.0
        self.watch = False          # the store has a data_version to watch
        self.seen_version = None
        self.hinted = False         # a wake-up hint came since the last read
        self.scheduler_hint = None  # where the scheduler that wrote it takes hints


class Stopping:
    """How far the worker is in stopping: asked to (hand back the queue,
    grace for the task at hand), asked again (at once), or leaving because
    another live process holds the name (`leaving`: that NameTaken)."""

    def __init__(self):
        self.asked = False
        self.urgent = False
        self.leaving = None


class NameWatch:
    """Another process seen under this name: until `contended_until`, fresh
    entries run only after the record shows the name is still ours (set
    when the inbox named another process; at start the scheduler's side
    suffices: entries are addressed to our token, and what a rival under
    the name holds is not rolled back while it lives). `addressed_elsewhere`:
    the inbox still names a predecessor (said once in the log)."""

    def __init__(self):
        self.contended_until = 0.0
        self.addressed_elsewhere = False
