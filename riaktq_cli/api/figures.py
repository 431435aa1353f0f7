"""The queue's figures, as `stats` and `instances` show them and the API
returns them: counts per status, the oldest todo, throughput, limits, the
pause, and what each worker instance holds now.

Every figure is one index query (counts per status, the oldest `todo`,
tasks finished since a moment) plus the instance records, so gathering
them costs the same with a hundred tasks or a million.

What each instance holds:

Liveness is judged with the scheduler's own instance timeout (published in
the store, see `scheduler_settings`), so the views agree with the process
that acts on it. A lost or stopped instance holds nothing: its queued and
running tasks go back to todo, so it shows no queue and nothing at hand;
its outbox counts only results the scheduler has not committed yet.
`paused` says what `riaktq pause` holds back from it (pausing.py).
"""

from riaktq_cli.core import clock
from riaktq_cli.core.clock import now_us, seconds_to_us
from riaktq_cli.core.task import FAILED, STATUSES, TODO
from riaktq_cli.core.records import STOPPED, Inbox, split_handovers


def instance_rows(store, timeout_s, pause=False):
    """One row per instance record, judged with a timeout of `timeout_s`;
    `pause`: the pause view if the caller has read it (False: read it)."""
    from riaktq_cli.scheduler.pausing import view
    from riaktq_cli.store.base import INBOX, INSTANCE
    now = now_us()
    pause = view(store) if pause is False else pause
    rows = []
    instances, _ = split_handovers(store.list_records(INSTANCE))
    for name, record in sorted(instances.items()):
        inbox = Inbox.from_dict(store.get_record(INBOX, name))
        status = record.status
        if status != STOPPED and not record.is_live(now, seconds_to_us(timeout_s)):
            status = "lost"
        gone = status in ("lost", STOPPED)
        current = None if gone else record.current
        rows.append({
            "name": name, "tags": record.tags, "status": status,
            "queue": 0 if gone else inbox.queue_length(record), "outbox": len(record.uncommitted(inbox)),
            "heartbeat_age": round((now - record.heartbeat) / 1e6, 3),
            "current": current.id if current else None,
            "current_for": round((now - current.since) / 1e6, 3) if current else None,
            "host": record.host, "pid": record.pid,
            "paused": _paused(pause, record.tags),
            "log_lost": record.log_lost,
        })
    return rows


def _paused(pause, tags):
    """What assignment to this instance has paused: "all", its paused tags
    (comma-separated), or None."""
    if pause is None:
        return None
    if pause["all"]:
        return "all"
    return ",".join(t for t in tags if t in pause["tags"]) or None


MINUTE, HOUR = 60, 3600


def gather(store, instance_timeout):
    """The figures as a JSON-able dict (ages and durations in seconds).

    Instances are judged with the running scheduler's instance timeout when
    it has published one; `instance_timeout` (the config's) is the fallback.
    """
    from riaktq_cli.scheduler import limits, pausing
    from riaktq_cli.store import published as scheduler_settings

    timeout, source = scheduler_settings.instance_timeout(store, instance_timeout)
    now = clock.now_us()
    counts = store.count_by_status()
    counts = {status: counts.get(status, 0) for status in STATUSES}
    oldest = store.oldest_cat(TODO) if counts[TODO] else None
    pause = pausing.view(store)
    return {
        "at": now,
        "counts": counts,
        "total": sum(counts.values()),
        "oldest_todo_age": None if oldest is None else round(max(0, now - oldest) / 1e6, 3),
        "closed_last_minute": store.count_finished_since(now - seconds_to_us(MINUTE)),
        "closed_last_hour": store.count_finished_since(now - seconds_to_us(HOUR)),
        "failed_last_hour": store.count_finished_since(now - seconds_to_us(HOUR), FAILED),
        "instance_timeout": timeout,
        "instance_timeout_from": source,
        "pause": pause,
        "limits": limits.view(store, now),
        "instances": instance_rows(store, timeout, pause),
        # why the counts may be short now (a Riak cluster catching up), or None
        "partial": store.listings_partial(),
    }
