"""Child processes of a run, and the CPU they use.

Every process the benchmark starts gets a process group of its own, so that
stopping it stops its children too (`worker --count`, Huey's consumer) and
nothing outlives the run, whatever way it ends. CPU is read from
/proc/PID/stat (user + system ticks), which is exact per process and needs
no cooperation from the process measured.
"""

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def short_reason(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def fmt_ms(seconds):
    return f"{int(round(seconds * 1000))}ms"


def riaktq_argv():
    script = Path(sys.executable).with_name("riaktq")
    return [str(script)] if script.exists() else [sys.executable, "-m", "riaktq_cli"]


class Procs:
    """Child processes in process groups of their own, stopped on any exit."""

    def __init__(self):
        self.live = []

    def start(self, argv, *, cwd, log_path, env=None, stdout=None, text=False):
        logf = open(log_path, "ab")
        proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                                stdout=stdout if stdout is not None else logf, stderr=logf,
                                start_new_session=True, text=text)
        proc.bench_log = logf
        self.live.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM, timeout=15.0):
        """Ask the group leader to stop (it stops its own children, which
        then count in RUSAGE_CHILDREN), then kill whatever is left."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        proc.bench_log.close()
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self):
        for proc in list(self.live):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=3.0)


PROCS = Procs()
atexit.register(PROCS.stop_all)


def check_alive(**procs):
    """Raise when one of the named processes has exited."""
    for what, proc in procs.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")


def cpu_children():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def process_ticks(pid):
    """CPU ticks (user + system) process `pid` has used, or None if gone."""
    try:
        fields = _stat_fields(pid)
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def group_members(pgid):
    """Live pids of process group `pgid` (Linux /proc; [] elsewhere)."""
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if int(_stat_fields(entry)[2]) == pgid:
                        pids.append(int(entry))
    return pids


def group_cpu(pgid, *, leader=True, members=True):
    """CPU seconds (user+sys) used so far by the live processes of process
    group `pgid` (the leader, the other members, or both); None off Linux."""
    if not os.path.isdir("/proc"):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in group_members(pgid):
        if (pid == pgid and leader) or (pid != pgid and members):
            total += process_ticks(pid) or 0
    return total / tick


def core_percent(pids, seconds):
    """% of one core each pid used over the next `seconds` (wall clock),
    from its /proc ticks; {pid: percent}."""
    tick = os.sysconf("SC_CLK_TCK")
    before = {pid: process_ticks(pid) for pid in pids}
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    out = {}
    for pid, ticks in before.items():
        after = process_ticks(pid)
        if ticks is not None and after is not None:
            out[pid] = (after - ticks) / tick / took * 100
    return out


def wait_until(condition, timeout, what, every=0.05, alive=None):
    """Poll `condition()` until it is truthy (returning it) or `timeout`
    seconds pass (RuntimeError naming `what`); `alive` = processes that
    must keep running meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if alive:
            check_alive(**alive)
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")
