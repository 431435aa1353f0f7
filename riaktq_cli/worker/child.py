"""The handler process: `python -m riaktq_cli.worker.child`, one per worker.

Started by the worker (worker/process.py) with pipes on stdin and stdout.
It moves the channel off fds 0 and 1 at once -- stdin becomes /dev/null and
stdout goes to stderr -- so a handler that prints or reads stdin cannot
corrupt the protocol. Then:

  worker → child   ("init", spec, options, worker_pid)
  child → worker   ("ready", handler_tags) | ("error", one_line)
  worker → child   ("run", [(n, task_id, data, tags), ...])   any number
  child → worker   ("result", n, status, out, sat_us, laf_us) one per task
  worker → child   ("drop",)  →  child: ("dropped", [n, ...])

Tasks run one at a time in the order received; a result is written as soon
as its task ends, so the worker always knows which task is at hand (the
first one sent without a result). A reader thread takes messages while a
handler runs, so "drop" is answered at once and the worker's writes never
block on a busy child. EOF on the channel, or a parent that is not the
worker any more, means the worker died: the child kills its session and
exits, so no handler outlives its worker.
"""

import collections
import os
import select
import signal
import sys
import threading
import time

from riaktq_cli.worker import channel

PARENT_CHECK = 1.0  # seconds between parent checks while no message comes


class Child:
    def __init__(self, in_fd, out_fd):
        self.reader = channel.FrameReader(in_fd)
        self.out_fd = out_fd
        self.write_lock = threading.Lock()
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.parent = None

    def send(self, message):
        data = channel.encode(message)
        try:
            with self.write_lock:
                channel.write_all(self.out_fd, data)
        except OSError:  # the worker closed its end: it is gone
            orphaned()

    def receive(self):
        """Block until messages come; [] never, exits on EOF/orphaning."""
        while True:
            ready, _, _ = select.select([self.reader.fd], [], [], PARENT_CHECK)
            if self.parent is not None and os.getppid() != self.parent:
                orphaned()
            if not ready:
                continue
            messages, eof = self.reader.read()
            if messages:
                return messages
            if eof:
                orphaned()

    def read_loop(self):
        # Signals go to the main thread, where the handler runs and where
        # the SIGTERM of a dying worker must interrupt it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            self._read_messages()
        except BaseException:  # noqa: B036 -- a child that cannot hear its worker is useless
            import traceback
            traceback.print_exc()
            orphaned()

    def _read_messages(self):
        while True:
            for message in self.receive():
                kind = message[0]
                if kind == "run":
                    with self.cond:
                        self.queue.extend(message[1])
                        self.cond.notify()
                elif kind == "drop":
                    with self.cond:
                        dropped = [item[0] for item in self.queue]
                        self.queue.clear()
                    self.send(("dropped", dropped))

    def run_loop(self, handler):
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                n, task_id, data, tags = self.queue.popleft()
            sat = time.time_ns() // 1000
            started = time.perf_counter_ns()
            try:
                status, out = handler.run(task_id, data, tags)
            except BaseException as exc:  # noqa: B036 -- Handler.run already catches; belt and braces
                status, out = "failed", f"{type(exc).__name__}: {exc}".encode()
            laf = (time.perf_counter_ns() - started) // 1000
            self.send(("result", n, status, out, sat, laf))


def orphaned(*_args):
    """The worker is gone: take the handler's processes along and exit."""
    from riaktq_cli.signals import kill_session
    if os.getsid(0) == os.getpid():
        kill_session(os.getpid())  # SIGKILLs this process too
    os._exit(1)


def main():
    # The channel leaves fds 0 and 1 before any handler code is imported.
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = Child(in_fd, out_fd)
    init = child.receive()[0]
    _kind, spec, options, parent = init
    child.parent = parent
    from riaktq_cli.signals import die_with_parent
    signal.signal(signal.SIGTERM, orphaned)
    if not die_with_parent(signal.SIGTERM, parent):
        orphaned()
    from riaktq_cli.errors import HandlerError
    from riaktq_cli.handler import load_handler
    try:
        handler = load_handler(spec, options)
        tags = handler.tags()
    except HandlerError as exc:
        child.send(("error", str(exc)))
        os._exit(2)
    except BaseException as exc:  # noqa: B036 -- tags() of a broken handler
        from riaktq_cli.handler import one_line_reason
        child.send(("error", f"handler {spec!r}: {one_line_reason(exc)}"))
        os._exit(2)
    child.send(("ready", list(tags)))
    threading.Thread(target=child.read_loop, name="channel", daemon=True).start()
    child.run_loop(handler)


if __name__ == "__main__":
    main()
