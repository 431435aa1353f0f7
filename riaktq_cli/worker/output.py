"""What a handler writes to stdout and stderr, relayed to the worker's log.

The handler process (worker/child.py) points its fds 1 and 2 at pipes of
its own before any handler code runs; a thread here reads them and writes
each line to the worker's stderr (the log) -- as it came in the text
format, or in `--log-format json` as one JSON object with the task id and
the stream it came from:

    {"time": ..., "level": "info", "role": "worker", "instance": "w1",
     "message": "the line", "task": "t1", "stream": "stdout"}

Two things follow from the pipe being ours:

- A handler's write never fails because the log is gone (the reader of a
  piped stderr exited, or stderr was closed): the relay drops the line it
  cannot write and counts it (`lost`, reported to the worker, which shows
  it in its instance record), and the task goes on. Before, the handler's
  own print raised BrokenPipeError and failed the task.
- Lines stay whole: when a task ends, what it wrote is drained and a last
  line without a newline is ended there, so it is neither glued onto the
  worker's next log line nor attributed to the next task.
"""

import logging
import os
import select
import sys
import threading

from riaktq_cli import logs

STREAMS = ((1, "stdout"), (2, "stderr"))
LONGEST_LINE = 1 << 16  # a longer line without a newline is cut here


class OutputRelay:
    def __init__(self, sink_fd):
        self.sink = sink_fd      # the worker's stderr, as the handler process inherited it
        self.json = False
        self.task = None         # the task at hand, for the JSON form
        self.lost = 0            # lines that could not be written
        self._lock = threading.Lock()
        self._streams = {}       # read end -> stream name
        self._partial = {}       # stream name -> bytes of a line not ended yet

    def capture(self):
        """Point fds 1 and 2 at pipes read by a relay thread."""
        for fd, stream in STREAMS:
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            os.set_blocking(read_end, False)
            self._streams[read_end] = stream
            self._partial[stream] = bytearray()
        threading.Thread(target=self._relay, name="output", daemon=True).start()

    def configure(self, fmt, **context):
        """The worker's log format and the fields of its JSON lines."""
        self.json = fmt == "json"
        logs.set_context(**context)

    def task_ended(self):
        """The task at hand ended (main thread): relay all it wrote, end a
        line it left open, and attribute nothing more to it."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        with self._lock:
            for fd in list(self._streams):
                while self._read(fd):
                    pass
            for stream, partial in self._partial.items():
                if partial:
                    self._emit(stream, bytes(partial))
                    partial.clear()
            self.task = None

    def _relay(self):
        while self._streams:
            ready, _, _ = select.select(list(self._streams), [], [])
            with self._lock:
                for fd in ready:
                    self._read(fd)

    def _read(self, fd):
        """One read from a stream (under the lock); False when nothing came."""
        try:
            chunk = os.read(fd, LONGEST_LINE)
        except BlockingIOError:
            return False
        stream = self._streams[fd]
        if not chunk:  # every writer closed it: nothing more will come
            del self._streams[fd]
            return False
        partial = self._partial[stream]
        partial += chunk
        *lines, rest = bytes(partial).split(b"\n")
        for line in lines:
            self._emit(stream, line)
        partial[:] = rest
        if len(partial) >= LONGEST_LINE:
            self._emit(stream, bytes(partial))
            partial.clear()
        return True

    def _emit(self, stream, line):
        if self.json:
            text = line.decode("utf-8", "replace").rstrip("\r")
            data = (logs.json_line("info", text, task=self.task, stream=stream) + "\n").encode()
        else:
            data = line + b"\n"
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.sink, view):]
        except OSError:  # EPIPE, EBADF, EIO: the log is gone; the handler goes on
            self.lost += 1


class LostLines:
    """The worker's side: lines its stderr could not take, its own log lines
    and its handler's output, for its instance record (`log_lost`); said
    once in the log too, should some of it get through."""

    def __init__(self, name):
        self.name = name
        self._said = False

    def count(self, runner):
        lost = logs.lost_lines() + runner.output_lost()
        if lost and not self._said:
            self._said = True
            logging.getLogger("riaktq").warning(
                "worker %s: its log cannot be written; dropping the lines (counted in the instance "
                "record's log_lost)", self.name)
        return lost
