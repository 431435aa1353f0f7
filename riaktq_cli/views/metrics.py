"""Prometheus metrics: `stats --format prometheus` and the scheduler's /metrics.

Two kinds of figure, kept apart on purpose:

- The queue as the store holds it (tasks by status, instances by state, the
  oldest todo, throughput): gauges computed from `figures.gather` (api/figures.py) when they
  are asked for, so `stats --format prometheus` (a textfile collector fed
  by cron) and a scrape of the scheduler always agree with `stats --format
  json` for the same queue.
- What this scheduler process did (transitions, iteration durations, store
  requests and their errors): counters and a histogram (runtime/instruments.py,
  which the scheduler's package may import) that live only while metrics are
  enabled. Until `serve` enables them, the hooks the scheduler
  calls (`count_transition`, `observe_iteration`) are a dictionary lookup
  and return: prometheus_client (tens of milliseconds to import) is loaded
  only by processes that export metrics.

Names follow the Prometheus conventions: `riaktq_` prefix, base units
(`_seconds`), `_total` on counters. docs/operations.md "Metrics" documents each.
"""

import logging

from riaktq_cli.runtime.instruments import CountingStore, enable

log = logging.getLogger("riaktq")

INSTANCE_STATES = ("idle", "busy", "lost", "stopped")



# --- hooks the scheduler calls (cheap no-ops until enabled) -----------------





# --- the queue's figures as metric families ---------------------------------

def queue_families(figures):
    """Gauge families for the figures of `figures.gather` (api/figures.py) (one snapshot)."""
    from prometheus_client.core import GaugeMetricFamily

    tasks = GaugeMetricFamily("riaktq_tasks", "Tasks in the queue by status.", labels=["status"])
    for status, count in figures["counts"].items():
        tasks.add_metric([status], count)
    yield tasks
    yield GaugeMetricFamily("riaktq_oldest_todo_age_seconds",
                            "Age of the oldest todo task (0 when none is waiting).",
                            value=figures["oldest_todo_age"] or 0)
    yield GaugeMetricFamily("riaktq_tasks_closed_last_minute",
                            "Tasks that finished (done or failed) in the last minute.",
                            value=figures["closed_last_minute"])
    yield GaugeMetricFamily("riaktq_tasks_closed_last_hour",
                            "Tasks that finished (done or failed) in the last hour.",
                            value=figures["closed_last_hour"])
    yield GaugeMetricFamily("riaktq_tasks_failed_last_hour", "Tasks that failed in the last hour.",
                            value=figures["failed_last_hour"])
    states = dict.fromkeys(INSTANCE_STATES, 0)
    for row in figures["instances"]:
        states[row["status"]] = states.get(row["status"], 0) + 1
    instances = GaugeMetricFamily("riaktq_instances", "Worker instances by state.", labels=["state"])
    for state, count in states.items():
        instances.add_metric([state], count)
    yield instances
    yield GaugeMetricFamily("riaktq_instance_timeout_seconds",
                            "The instance timeout liveness is judged with (the scheduler's).",
                            value=figures["instance_timeout"])
    pause = figures.get("pause") or {"all": False, "tags": []}
    yield GaugeMetricFamily("riaktq_assignment_paused",
                            "1 while `riaktq pause` holds back all tasks (or, with a tag, those needing it).",
                            value=1 if pause["all"] or pause["tags"] else 0)
    yield GaugeMetricFamily("riaktq_listings_partial",
                            "1 while the store says its listings and counts may be partial (a Riak cluster catching up).",
                            value=1 if figures.get("partial") else 0)
    yield from _limit_families(figures.get("limits") or [])


def _limit_families(rows):
    """The limits per tag (limits.view): what is set, in flight, used."""
    from prometheus_client.core import GaugeMetricFamily

    limit = GaugeMetricFamily("riaktq_tag_concurrency_limit", "`riaktq limit --concurrency`: at most this many "
                              "tasks needing the tag assigned and unfinished at once.", labels=["tag"])
    in_flight = GaugeMetricFamily("riaktq_tag_in_flight", "Tasks needing a limited tag assigned and unfinished "
                                  "(nextup).", labels=["tag"])
    rate = GaugeMetricFamily("riaktq_tag_rate_limit", "`riaktq limit --rate`: at most this many assigns per "
                             "window.", labels=["tag"])
    window = GaugeMetricFamily("riaktq_tag_rate_window_seconds", "The rate limit's window.", labels=["tag"])
    used = GaugeMetricFamily("riaktq_tag_rate_used", "Assigns of tasks needing the tag in the current window.",
                             labels=["tag"])
    for row in rows:
        in_flight.add_metric([row["tag"]], row["in_flight"])
        if row["concurrency"] is not None:
            limit.add_metric([row["tag"]], row["concurrency"])
        if row["rate"] is not None:
            rate.add_metric([row["tag"]], row["rate_count"])
            window.add_metric([row["tag"]], row["rate_seconds"])
            used.add_metric([row["tag"]], row["used"])
    yield from (limit, in_flight, rate, window, used)


class _Snapshot:
    """A collector over figures gathered once (`stats --format prometheus`)."""

    def __init__(self, figures):
        self.figures = figures

    def collect(self):
        return queue_families(self.figures)


def exposition(figures):
    """The text exposition format of `figures`, for a textfile collector."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(figures))
    return generate_latest(registry).decode("utf-8")


class _LiveQueue:
    """A collector that gathers the queue's figures at every scrape."""

    def __init__(self, store, instance_timeout):
        self.store = store
        self.instance_timeout = instance_timeout

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from riaktq_cli.api import figures
        from riaktq_cli.core.errors import StoreError

        try:
            figures = figures.gather(self.store, self.instance_timeout)
        except StoreError as exc:
            log.warning("metrics: cannot read the queue's figures: %s", exc)
            figures = None
        yield GaugeMetricFamily("riaktq_store_up", "1 when the last scrape could read the store.",
                                value=0 if figures is None else 1)
        if figures is not None:
            yield from queue_families(figures)


# --- counting store requests --------------------------------------------------





# --- the scheduler's endpoint -------------------------------------------------



def serve(addr, store, instance_timeout):
    """Serve /metrics on `addr` ((host, port)) from a background thread;
    return the store to use from now on (counting its requests)."""
    from prometheus_client import start_http_server

    from riaktq_cli.core.errors import ConfigError

    registry = enable()
    counted = CountingStore(store)
    registry.register(_LiveQueue(counted, instance_timeout))
    host, port = addr
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"--metrics {format_addr(addr)}: cannot listen ({exc.strerror or exc})") from None
    log.info("metrics on http://%s/metrics", format_addr(addr))
    return counted


def format_addr(addr):
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_addr(text):
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface) → (host, port);
    ValueError with the reason otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        raise ValueError("expected ADDR:PORT, e.g. 127.0.0.1:9464 or :9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r}: expected 1-65535")
    return host or "0.0.0.0", int(port)
