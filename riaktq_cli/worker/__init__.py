"""Worker instances: run the tasks the scheduler puts in their inbox.

A worker is three parts, each in its own module:

- `instance.Worker` -- the main thread: store I/O only (inbox in, instance
  record with heartbeat, queue, task at hand and outbox out), in a small
  loop of initialize / step / shutdown;
- `runner.Runner` -- a thread that feeds the handler process, enforces time
  limits and the shutdown grace, and turns a dead handler process into a
  `crashed` result;
- `child` -- the handler process itself (`python -m riaktq_cli.worker.child`),
  so a handler that hangs, crashes or leaks can always be stopped by
  killing its process session, never the worker.

`Worker` is imported lazily so the handler process, which imports this
package, does not pay for the store modules.
"""


def __getattr__(name):
    if name == "Worker":
        from riaktq_cli.worker.instance import Worker
        return Worker
    raise AttributeError(name)
