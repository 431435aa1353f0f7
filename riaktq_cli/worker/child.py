"""The handler process: `python -m riaktq_cli.worker.child`, one per worker.

Started by the worker (worker/process.py) with pipes on stdin and stdout.
It moves the channel off fds 0 and 1 at once -- stdin becomes /dev/null,
stdout and stderr pipes that worker/output.py relays to the worker's log
line by line -- so a handler that prints or reads stdin cannot corrupt the
protocol, and one whose log is gone does not fail. It is a child subreaper
(worker/tree.py), so whatever it starts can be killed with it. Then:

  worker → child   ("init", spec, options, worker_pid, {format, instance})
  child → worker   ("ready", handler_tags) | ("error", one_line)
  worker → child   ("run", [(n, task_id, data, tags), ...])   any number
  child → worker   ("result", n, status, out, sat_us, laf_us) one per task
  child → worker   ("output_lost", lines)   after a task, when that count grew
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
from riaktq_cli.worker.tree import reap_adopted

PARENT_CHECK = 1.0  # seconds between parent checks while no message comes


class Child:
    def __init__(self, in_fd, out_fd):
        self.reader = channel.FrameReader(in_fd)
        self.out_fd = out_fd
        self.write_lock = threading.Lock()
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.parent = None
        self.relay = None            # the handler's stdout and stderr (worker/output.py)
        self.lost_reported = 0

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
            self.relay.task = task_id
            sat = time.time_ns() // 1000
            started = time.perf_counter_ns()
            try:
                status, out = handler.run(task_id, data, tags)
            except BaseException as exc:  # noqa: B036 -- Handler.run already catches; belt and braces
                status, out = "failed", f"{type(exc).__name__}: {exc}".encode()
            laf = (time.perf_counter_ns() - started) // 1000
            self.relay.task_ended()
            reap_adopted()
            self.send(("result", n, status, out, sat, laf))
            if self.relay.lost != self.lost_reported:
                self.lost_reported = self.relay.lost
                self.send(("output_lost", self.relay.lost))


def orphaned(*_args):
    """The worker is gone: take the handler's processes along and exit."""
    from riaktq_cli.worker.tree import kill_tree
    if os.getsid(0) == os.getpid():
        kill_tree(os.getpid())  # every descendant, then the session: this process too
    os._exit(1)


def main():
    # Before any handler code runs: adopt every orphan among our descendants
    # (worker/tree.py), and move the channel off fds 0 and 1; stdout and
    # stderr become pipes that the output relay copies to the worker's log.
    from riaktq_cli.logs import ensure_standard_fds
    from riaktq_cli.worker.tree import become_subreaper
    ensure_standard_fds()  # a worker without stderr: the log lines go nowhere
    become_subreaper()
    in_fd, out_fd, sink = os.dup(0), os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    from riaktq_cli.worker.output import OutputRelay
    relay = OutputRelay(sink)
    relay.capture()
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = Child(in_fd, out_fd)
    child.relay = relay
    init = child.receive()[0]
    _kind, spec, options, parent, *rest = init
    log_settings = rest[0] if rest else {}
    relay.configure(log_settings.get("format", "text"), role="worker", instance=log_settings.get("instance"))
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
