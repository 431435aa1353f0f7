"""Errors a user can cause or meet, each rendered as one clear line.

One hierarchy for the command line and the Python API (api/queue.py) alike: an
application catches `TaskExists` or `WaitTimeout`; the CLI turns every
`RiaktqError` into its message on stderr and its `exit_code` (1 refused,
2 bad input or config, 3 store unreachable). Anything else is a bug and
shows a traceback only with `-v` (runtime/logs.py: report_failure).

A command fails one way: it raises a RiaktqError, and `report_failure` (runtime/logs.py) is
the one place that prints it, after the one prefix `riaktq: error: `. A
command that reports several refused items as it goes prints each with
`error_line` (the same prefix) and ends with `Incomplete`. Errors are told
apart by their type (and a store's by the status it carries), never by
their text.
"""


class RiaktqError(Exception):
    """A failure the user can understand and act on; str() is one line."""

    exit_code = 1


class ConfigError(RiaktqError):
    """The configuration file or a command-line value is wrong."""

    exit_code = 2


class BadInput(RiaktqError):
    """What the user gave a command is malformed or out of range."""

    exit_code = 2


class DurationError(ConfigError):
    """A duration is not written as a number with ms/s/m/h/d."""


class HandlerError(RiaktqError):
    """A handler cannot be found or loaded."""

    exit_code = 2


class StoreError(RiaktqError):
    """The store cannot be reached or refused an operation."""

    exit_code = 3


class StoreConflict(StoreError):
    """The store refused a conditional write: the key exists (a create) or
    was changed by someone else since it was read."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; daemons wait and retry."""


class ForeignValue(StoreError):
    """A key of ours holds a value that is not a riaktq record (another
    program wrote it, or it was cut short): skipped, never fatal."""


class StoreRefused(StoreUnavailable):
    """The store answered no: wrong credentials, a missing grant, plain HTTP
    to a secure node, an untrusted certificate.

    A StoreUnavailable, so daemons wait and retry (an operator may be fixing
    grants right now) instead of dying; a one-shot command exits 3 with the
    message, which is one line that says what to fix and never the password."""

    exit_code = 3


class PartialUpdate(StoreUnavailable):
    """Some writes of a batch failed (Riak has no multi-key transaction).

    `written` holds the (old, new) pairs that landed; `failed` the ids whose
    write failed -- after a timeout it may still have been applied, so the
    caller must not assume either way."""

    def __init__(self, message, written, failed):
        super().__init__(message)
        self.written = written
        self.failed = failed


class NotSettled(StoreError):
    """A change selected by status refused while the store's listings may
    be partial (a Riak cluster catching up); `--force` overrides."""


class PartialCreate(StoreUnavailable):
    """No node answered for some creates of a batch; the others were each
    sent on their own (Riak) and may have landed. `results` is parallel to
    the tasks: None (created), the error that refused it (DuplicateTask),
    or a StoreUnavailable (not opened)."""

    def __init__(self, message, results):
        super().__init__(message)
        self.results = results


class TaskExists(RiaktqError):
    """A task with this id already exists (open refuses to replace it)."""

    def __init__(self, task_id):
        super().__init__(f"task {task_id!r} already exists")
        self.task_id = task_id


class NoSuchTask(RiaktqError):
    """No task with this id."""

    def __init__(self, task_id):
        super().__init__(f"no task {task_id!r}")
        self.task_id = task_id


# The names the stores and older callers use.
DuplicateTask = TaskExists
TaskNotFound = NoSuchTask


class WrongStatus(RiaktqError):
    """The task is not in a status the operation applies to (requeue of a
    task that is still todo or nextup); it was left alone."""

    def __init__(self, task_id, status, wanted="done or failed"):
        super().__init__(f"task {task_id!r} is {status}, not {wanted}")
        self.task_id = task_id
        self.status = status


class AlreadyFinished(WrongStatus):
    """The task has ended (done or failed): nothing left to cancel."""

    def __init__(self, task_id, status):
        RiaktqError.__init__(self, f"task {task_id!r} is already {status}")
        self.task_id = task_id
        self.status = status


class BadTasks(BadInput):
    """Some tasks given to `Queue.open_many` are malformed; none was opened.

    `problems` holds (position, message) for every bad one (position 0 is
    the first task given), so a caller can report them all at once rather
    than one per attempt."""

    def __init__(self, problems):
        (where, what), more = problems[0], len(problems) - 1
        super().__init__(f"{len(problems)} bad task(s), none opened: task {where}: {what}"
                         + (f" (and {more} more)" if more else ""))
        self.problems = problems


WAIT_NAMED = 5  # pending ids a WaitTimeout names


class WaitTimeout(RiaktqError, TimeoutError):
    """`Queue.wait` ran out of time with tasks still unfinished.

    Exit 2, as `riaktq open --wait --timeout` always had. `pending` maps
    each unfinished id to its status; `finished` holds the tasks that did
    finish, in the order asked."""

    exit_code = 2

    def __init__(self, pending, finished):
        if len(pending) == 1:
            (task_id, status), = pending.items()
            text = f"task {task_id!r} still {status} after the timeout"
        else:  # one line, however many: the first few by name
            named = ", ".join(f"{i!r} {s}" for i, s in list(pending.items())[:WAIT_NAMED])
            more = f" and {len(pending) - WAIT_NAMED} more" if len(pending) > WAIT_NAMED else ""
            text = f"{len(pending)} tasks still unfinished after the timeout: {named}{more}"
        super().__init__(text)
        self.pending = pending
        self.finished = finished


class QueueClosed(RiaktqError):
    """The Queue was closed; open a new one."""

    def __init__(self):
        super().__init__("the queue is closed")


class Refused(RiaktqError):
    """The operation does not apply to things as they are now (forget a
    live instance...); nothing was changed. Exit 1."""


class TransitionError(RiaktqError):
    """A transition does not apply to the task in its current state."""


class UsageFailed(BadInput):
    """The command line itself is wrong (click's usage errors): exit 2."""


class Incomplete(RiaktqError):
    """A command did only part of what it was asked, and has said what as it
    went (a line per refused id with `error_line`, a ✗ per failed check, the
    output of the tasks that failed): it ends with this, which adds a line
    only when given a message. Exit 1 unless told otherwise (`scheduler
    --once` that did not hold the lease: 3)."""

    def __init__(self, message="", exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


PREFIX = "riaktq: error: "


