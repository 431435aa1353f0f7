"""Errors a user can cause or meet, each rendered as one clear line.

The CLI turns every `RiaktqError` into its message on stderr and a non-zero
exit; anything else is a bug and shows a traceback only with `-v`.
"""


class RiaktqError(Exception):
    """A failure the user can understand and act on; str() is one line."""

    exit_code = 1


class ConfigError(RiaktqError):
    """The configuration file or a command-line value is wrong."""

    exit_code = 2


class DurationError(ConfigError):
    """A duration is not written as a number with ms/s/m/h/d."""


class HandlerError(RiaktqError):
    """A handler cannot be found or loaded."""

    exit_code = 2


class StoreError(RiaktqError):
    """The store cannot be reached or refused an operation."""

    exit_code = 3


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; daemons wait and retry."""


class DuplicateTask(RiaktqError):
    """A task with this id already exists."""

    def __init__(self, task_id):
        super().__init__(f"task {task_id!r} already exists")
        self.task_id = task_id


class TaskNotFound(RiaktqError):
    """No task with this id."""

    def __init__(self, task_id):
        super().__init__(f"no task {task_id!r}")
        self.task_id = task_id


class TransitionError(RiaktqError):
    """A transition does not apply to the task in its current state."""
