"""riaktq: a persistent task queue with one scheduler and many workers.

The store (embedded SQLite or Riak KV) is the only thing the processes share;
see docs/architecture.md for how scheduler and workers talk through it.

Applications use the Python API (riaktq_cli/api.py, docs/python-api.md):

    from riaktq_cli import Queue, TaskExists
    with Queue.from_config() as q:
        q.open("task-42", b"payload")

The names below load on first use (PEP 562), so `riaktq --help` and the
fast `riaktq open` pay for none of them.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Queue": "riaktq_cli.api", "Outcome": "riaktq_cli.api", "make_task": "riaktq_cli.api_input",
    "Task": "riaktq_cli.task",
    **{name: "riaktq_cli.errors" for name in (
        "RiaktqError", "TaskExists", "NoSuchTask", "BadInput", "BadTasks", "WrongStatus", "WaitTimeout",
        "QueueClosed", "ConfigError", "StoreError", "StoreUnavailable", "StoreRefused", "PartialUpdate",
        "HandlerError", "AlreadyFinished", "Refused")},
}
__all__ = ["__version__", *_EXPORTS]

TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from riaktq_cli.api import Outcome, Queue  # noqa: F401
    from riaktq_cli.api_input import make_task  # noqa: F401
    from riaktq_cli.errors import (AlreadyFinished, BadInput, BadTasks, ConfigError, HandlerError,  # noqa: F401
                                   NoSuchTask, PartialUpdate, QueueClosed, Refused, RiaktqError, StoreError,
                                   StoreRefused, StoreUnavailable, TaskExists, WaitTimeout, WrongStatus)
    from riaktq_cli.task import Task  # noqa: F401


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
