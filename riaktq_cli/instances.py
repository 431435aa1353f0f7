"""What each worker instance holds now, as `instances` and `stats` show it.

Liveness is judged with the scheduler's own instance timeout (published in
the store, see `scheduler_settings`), so the views agree with the process
that acts on it. A lost or stopped instance holds nothing: its queued and
running tasks go back to todo, so it shows no queue and nothing at hand;
its outbox counts only results the scheduler has not committed yet.
`paused` says what `riaktq pause` holds back from it (pausing.py).
"""

from riaktq_cli import protocol
from riaktq_cli.clock import now_us, seconds_to_us


def instance_rows(store, timeout_s, pause=False):
    """One row per instance record, judged with a timeout of `timeout_s`;
    `pause`: the pause view if the caller has read it (False: read it)."""
    from riaktq_cli.pausing import view
    from riaktq_cli.store.base import INBOX, INSTANCE
    now = now_us()
    pause = view(store) if pause is False else pause
    rows = []
    instances, _ = protocol.split_handovers(store.list_records(INSTANCE))
    for name, record in sorted(instances.items()):
        inbox = store.get_record(INBOX, name) or protocol.empty_inbox()
        age = (now - record.get("heartbeat", 0)) / 1e6
        status = record.get("status")
        if status != protocol.STOPPED and not protocol.is_live(record, now, seconds_to_us(timeout_s)):
            status = "lost"
        gone = status in ("lost", protocol.STOPPED)
        current = None if gone else record.get("current")
        committed = protocol.committed_keys(inbox)
        outbox = [r for r in record.get("outbox", []) if protocol.run_key(r) not in committed]
        rows.append({
            "name": name, "tags": record.get("tags", []), "status": status,
            "queue": 0 if gone else protocol.queue_length(inbox, record), "outbox": len(outbox),
            "heartbeat_age": round(age, 3),
            "current": current["id"] if current else None,
            "current_for": round((now - current["since"]) / 1e6, 3) if current else None,
            "host": record.get("host"), "pid": record.get("pid"),
            "paused": _paused(pause, record.get("tags", [])),
            "log_lost": record.get("log_lost", 0),
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
