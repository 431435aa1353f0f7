"""What each worker instance holds now, as `instances` and `stats` show it.

Liveness is judged with the scheduler's own instance timeout (published in
the store, see `scheduler_settings`), so the views agree with the process
that acts on it. A lost or stopped instance holds nothing: its queued and
running tasks go back to todo, so it shows no queue and nothing at hand;
its outbox counts only results the scheduler has not committed yet.
`paused` says what `riaktq pause` holds back from it (pausing.py).
"""

from riaktq_cli.clock import now_us, seconds_to_us
from riaktq_cli.records import STOPPED, Inbox, split_handovers


def instance_rows(store, timeout_s, pause=False):
    """One row per instance record, judged with a timeout of `timeout_s`;
    `pause`: the pause view if the caller has read it (False: read it)."""
    from riaktq_cli.pausing import view
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
