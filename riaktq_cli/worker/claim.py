"""One name, one process: who holds an instance name.

Every worker process draws a random `token` and writes it in its instance
record. At start, a name whose record is live (not stopped, heartbeat
within the instance timeout) and belongs to another process refuses the
newcomer. On the same host we can do better than wait out the timeout: a
record whose pid is not running any more (a worker killed with -9 that its
supervisor restarts at once) is a dead holder, and its successor takes over
at once.

While running, the scheduler addresses the inbox to the token it last saw
in the record. An inbox addressed to another token means either the
scheduler has not seen our record yet (our predecessor's token: wait), or
another live process writes the record too -- then we leave.
"""

from riaktq_cli.store import published as scheduler_settings
from riaktq_cli.core.clock import seconds_to_us
from riaktq_cli.core.durations import format_duration
from riaktq_cli.core.errors import RiaktqError
from riaktq_cli.runtime.signals import pid_alive


class NameTaken(RiaktqError):
    """Another live worker process holds this instance name."""

    exit_code = 2


def holder(record, *, host, pid, token, now_us, timeout_us):
    """The record (an Instance, records.py) if it shows another live
    process holding the name, else None."""
    if record is None or record.token == token:
        return None
    if not record.is_live(now_us, timeout_us):
        return None
    if record.host == host and (record.pid == pid or not pid_alive(record.pid)):
        return None
    return record


def published_timeout_us(store, own_us):
    """The instance timeout (µs) to judge a name's holder with: the one the
    scheduler runs with (scheduler_settings.py), as the scheduler and
    `instances` judge it; this process's own config only while no
    scheduler has published one."""
    seconds, _source = scheduler_settings.instance_timeout(store, own_us / 1e6)
    return seconds_to_us(seconds)


def refusal(name, record, now_us):
    age = format_duration(max(0, now_us - record.heartbeat) / 1e6)
    return (f"instance name {name!r} is held by a live worker (pid {record.pid} on "
            f"{record.host}, heartbeat {age} ago); give another --name, or stop that one")
