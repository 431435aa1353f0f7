"""riaktq: a persistent task queue with one scheduler and many workers.

The store (embedded SQLite or Riak KV) is the only thing the processes share;
see docs/architecture.md for how scheduler and workers talk through it.

Applications use the Python API (riaktq_cli/api/queue.py, docs/python-api.md):

    from riaktq_cli import Queue, TaskExists
    with Queue.from_config() as q:
        q.open("task-42", b"payload")

The names below load on first use (PEP 562), so `riaktq --help` and the
fast `riaktq open` pay for none of them.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Queue": "riaktq_cli.api.queue", "Outcome": "riaktq_cli.api.outcomes", "make_task": "riaktq_cli.api.inputs",
    "Task": "riaktq_cli.core.task",
    **{name: "riaktq_cli.core.errors" for name in (
        "RiaktqError", "TaskExists", "NoSuchTask", "BadInput", "BadTasks", "WrongStatus", "WaitTimeout",
        "QueueClosed", "ConfigError", "StoreError", "StoreUnavailable", "StoreRefused", "PartialUpdate",
        "HandlerError", "AlreadyFinished", "Refused")},
}
__all__ = ["__version__", *_EXPORTS]

TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from riaktq_cli.api.outcomes import Outcome  # noqa: F401
    from riaktq_cli.api.queue import Queue  # noqa: F401
    from riaktq_cli.api.inputs import make_task  # noqa: F401
    from riaktq_cli.core.errors import (
        AlreadyFinished,
        BadInput,
        BadTasks,
        ConfigError,
        HandlerError,
        PartialUpdate,
        QueueClosed,
        Refused,
        RiaktqError,
        StoreError,
        StoreRefused,
        StoreUnavailable,
        TaskExists,
        WaitTimeout,
        WrongStatus,
    )
    from riaktq_cli.core.task import Task  # noqa: F401


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'riaktq_cli' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
