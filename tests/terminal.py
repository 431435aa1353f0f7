"""Run a riaktq command on a pseudo-terminal, as a person would see it.

Shared by the tests that check what rich draws and what reaches a terminal
(escaping, live views, tables on a terminal)."""

import fcntl
import os
import select
import struct
import subprocess
import termios
import time


def spawn_in_pty(argv, cwd=None, rows=50, cols=160):
    """Start `argv` with a terminal of rows x cols as stdin/stdout/stderr;
    (process, master fd)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM"):
        env.pop(name, None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    return proc, master


def read_pty(master, seconds, until=None):
    """Read what the program writes for up to `seconds` (or until `until(text)`)."""
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the program exited and closed the terminal
                break
            if not chunk:
                break
            data += chunk
            if until and until(data.decode("utf-8", "replace")):
                break
    return data.decode("utf-8", "replace")
