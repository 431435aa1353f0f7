"""Finding and loading task handlers.

What a handler module provides (`init`, `tags`, `handle`), where it runs
and what it may rely on is the interface in `handler_api.py`; this module
enforces it. `--handler` takes a built-in name (a module in the `handlers`
package), a dotted module path, or a path to a `.py` file. The worker loads
it in its handler process (worker/child.py), which reports a load or init
error before the worker registers itself, so a typo is an error at start,
not a stream of failed tasks. The worker itself only carries a `HandlerSpec`.
"""

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from riaktq_cli.core.errors import HandlerError


class HandlerSpec:
    """A handler by name and init options, not loaded in this process."""

    def __init__(self, name, options=None):
        self.name = name
        self.options = dict(options or {})


@dataclass
class Handler:
    name: str
    module: object
    state: object
    options: dict = field(default_factory=dict)

    def run(self, task_id, data, tags):
        """Run one task: (status, output bytes). Failures become one line."""
        try:
            result = self.module.handle(task_id, data, list(tags), self.state)
        except BaseException as exc:  # noqa: B036 -- even sys.exit() in a handler
            # is the task's failure: the runner thread must live on, or the
            # task would stay at hand forever while the heartbeat goes on.
            return "failed", one_line_reason(exc).encode("utf-8")
        if result is None:
            return "done", b""
        if isinstance(result, str):
            return "done", result.encode("utf-8")
        if isinstance(result, (bytes, bytearray, memoryview)):
            return "done", bytes(result)
        return "failed", f"handler returned {type(result).__name__}, not bytes or str".encode()

    def tags(self):
        fn = getattr(self.module, "tags", None)
        return check_tags(self.name, fn(self.state)) if fn else []


def check_tags(name, tags):
    """A handler's tags() result as a list of strings, else HandlerError
    (exit 2 at start instead of a crash)."""
    if isinstance(tags, (str, bytes)) or not isinstance(tags, (list, tuple, set, frozenset)) \
            or not all(isinstance(t, str) and t and not any(c.isspace() or c == "," for c in t) for t in tags):
        raise HandlerError(f"handler {name!r}: tags() must return a list of words, got {tags!r:.60}")
    return list(tags)


def one_line_reason(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_module(spec):
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise HandlerError(f"unknown handler {spec!r}: no such file")
        mod_name = f"riaktq_handler_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        loader_spec.loader.exec_module(module)
        return module
    from handlers import BUILTIN
    name = f"handlers.{spec}" if spec in BUILTIN else spec
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise HandlerError(f"unknown handler {spec!r}: not a built-in ({', '.join(BUILTIN)}),"
                               " an importable module, or a .py file") from None
        raise


def load_handler(spec, options=None):
    """Import the handler and run its init(options); errors are HandlerError."""
    try:
        module = _import_module(spec)
    except HandlerError:
        raise
    except Exception as exc:
        raise HandlerError(f"handler {spec!r} failed to import: {one_line_reason(exc)}") from None
    if not callable(getattr(module, "handle", None)):
        raise HandlerError(f"handler {spec!r} has no handle(task_id, data, tags, state) function")
    state = None
    init = getattr(module, "init", None)
    if init is not None:
        try:
            state = init(dict(options or {}))
        except Exception as exc:
            raise HandlerError(f"handler {spec!r}: init failed: {one_line_reason(exc)}") from None
    handler = Handler(name=spec, module=module, state=state, options=dict(options or {}))
    try:
        handler.tags()  # a bad tags() fails at start, before any instance registers
    except HandlerError:
        raise
    except Exception as exc:
        raise HandlerError(f"handler {spec!r}: tags() failed: {one_line_reason(exc)}") from None
    return handler
