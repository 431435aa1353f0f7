"""Built-in task handlers, selected with `riaktq worker --handler NAME`.

A handler is a module with `handle(task_id, data, tags, state)` returning
bytes or str, and optionally `init(options) -> state` and `tags(state)`.
"""

BUILTIN = ("echo", "shell", "sleep", "fail")
