"""The handler interface: what a module named by `riaktq worker --handler` provides.

A handler is a plain module (a built-in name, a dotted path such as
`mypkg.resize` importable by the worker, or a `.py` file) with up to three
functions. Only `handle` is required:

    def init(options: dict[str, str]) -> State       # optional
    def tags(state: State) -> list[str]               # optional
    def handle(task_id: str, data: bytes, tags: list[str], state: State) -> bytes | str | None

Where and when they run. Each worker instance runs its handler in a child
process of its own (`python -m riaktq_cli.worker.child`, see
worker/child.py), never in the worker itself:

- `init(options)` runs once in that process at start, with the worker's
  `--option KEY=VALUE` pairs (values are text). What it returns is the
  `state` given to the other two: a model, a connection, a dict. If it
  raises, the worker does not start (exit 2, one line naming the handler).
- `tags(state)` is called once after `init`: features this instance offers
  (words without spaces or commas), added to the worker's `--tag`s. A task
  opened with tags runs only on an instance offering all of them.
- `handle(task_id, data, tags, state)` runs one task: `data` is the task's
  input, exactly the bytes it was opened with; `tags` the task's tags.
  Return the output as bytes (str is stored as UTF-8; None as empty) and
  the task is `done`. Raise and it is `failed` with the one-line reason
  `ExceptionName: message` as its output (restarted first if it has retries
  left). Tasks run one at a time, in the order the scheduler handed them.

What a handler may rely on, and must allow for:

- Its stdout goes to the worker's stderr (its log) and its stdin is
  /dev/null: printing is safe, reading input is not how data arrives.
- A task that outlives its time limit (`open --time-limit`, else the
  worker's `--time-limit`) is stopped by killing the handler process and
  everything it started; a fresh process runs `init` again. A worker told
  to stop (SIGTERM) lets the task at hand finish within its shutdown grace,
  else kills it the same way. Keep nothing in memory that must survive.
- Delivery is at least once: a task whose worker was lost runs again
  elsewhere, so `handle` should be safe to repeat (write results under the
  task id, not append them).

The Protocol below states the same in types, for a type checker or an IDE:
`riaktq_cli.worker.handler_api.check(module)` says what a module lacks.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol, TypeAlias

State: TypeAlias = Any
"""Whatever `init` returns (None without an `init`)."""

Output: TypeAlias = "bytes | bytearray | memoryview | str | None"


class Handler(Protocol):
    """A handler module, as a type: `handle` required, `init` and `tags` optional."""

    def handle(self, task_id: str, data: bytes, tags: list[str], state: State) -> Output:
        """Run one task; return its output, or raise to fail it."""


class InitHandler(Handler, Protocol):
    def init(self, options: dict[str, str]) -> State:
        """Set up once per handler process; the result is `state`."""


class TaggedHandler(Handler, Protocol):
    def tags(self, state: State) -> list[str]:
        """Features this instance offers, added to the worker's --tag."""


def check(module: ModuleType) -> list[str]:
    """What `module` lacks to be a handler, as sentences ([] if nothing).

    Loading checks more (worker: handler.load_handler runs init and tags);
    this one only looks, so it is safe in an application's own tests."""
    problems = []
    if not callable(getattr(module, "handle", None)):
        problems.append("no handle(task_id, data, tags, state) function")
    for name in ("init", "tags"):
        if hasattr(module, name) and not callable(getattr(module, name)):
            problems.append(f"{name} is not a function")
    return problems
