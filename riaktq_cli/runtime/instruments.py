"""What this process did, counted for Prometheus: the scheduler's task
transitions, its iteration durations, its store requests and their
errors, and its wake-up hints.

These counters and the histogram live only while metrics are enabled (`enable`,
which views.metrics.serve calls). Until then the hooks the scheduler calls
(`count_transition`, `observe_iteration`) are a dictionary lookup and return:
prometheus_client (tens of milliseconds to import) is loaded only by
processes that export metrics. The queue's own figures (tasks by status,
instances) are gauges computed on demand: see views/metrics.py.
"""

import types

TRANSITIONS = ("assign", "close", "restart", "rollback", "cancel")

# Iterations take a millisecond on a small SQLite queue, seconds on a busy Riak one.
ITERATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_transitions = {}       # transition kind -> Counter child, once enabled

_iteration = [None]     # the Histogram, once enabled

_store_counters = [None]  # (requests Counter, errors Counter), once enabled

HINT_EVENTS = ("received", "ignored", "sent")
_hints = {}             # wake-up hint event -> Counter child, once enabled

def count_transition(kind):
    """One task transition (`events.EventSink.emit` calls this for each)."""
    child = _transitions.get(kind)
    if child is not None:
        child.inc()

def count_hint(event, n=1):
    """Wake-up hints (hints.py): one `received` (after coalescing), `n`
    datagrams `ignored` (not our tag), one `sent`."""
    child = _hints.get(event)
    if child is not None:
        child.inc(n)

def observe_iteration(seconds):
    """One scheduler iteration took `seconds`."""
    histogram = _iteration[0]
    if histogram is not None:
        histogram.observe(seconds)

def _error_kind(exc):
    from riaktq_cli.core.errors import PartialUpdate, StoreUnavailable
    if isinstance(exc, PartialUpdate):
        return "partial"
    if isinstance(exc, StoreUnavailable):
        return "unavailable"
    return "error"

class CountingStore:
    """The scheduler's store, counting each operation and each failure.

    A transparent proxy: every public method of the store is counted in
    `riaktq_store_requests_total{operation}`, and a StoreError it raises in
    `riaktq_store_errors_total{operation, kind}` (kind: unavailable, partial,
    error). Generators (iter_todo, iter_ids) count once, errors while they
    are consumed included.
    """

    def __init__(self, store):
        self._store = store
        self._wrapped = {}

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = self._wrap(name, attr)
        return wrapped

    def _wrap(self, name, method):
        from riaktq_cli.core.errors import StoreError
        requests, errors = _store_counters[0]
        counter = requests.labels(name)

        def failed(exc):
            errors.labels(name, _error_kind(exc)).inc()

        def consume(gen):
            try:
                yield from gen
            except StoreError as exc:
                failed(exc)
                raise

        def call(*args, **kwargs):
            counter.inc()
            try:
                result = method(*args, **kwargs)
            except StoreError as exc:
                failed(exc)
                raise
            if isinstance(result, types.GeneratorType):
                return consume(result)
            return result

        return call

def enable(registry=None):
    """Create the process's counters and histogram; return the registry."""
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Histogram

    # `*_created` timestamps double the series and tell an operator nothing here.
    getattr(prometheus_client, "disable_created_metrics", lambda: None)()
    registry = registry or CollectorRegistry(auto_describe=True)
    transitions = Counter("riaktq_transitions", "Task transitions made by this scheduler, by kind.",
                          ["transition"], registry=registry)
    for kind in TRANSITIONS:
        _transitions[kind] = transitions.labels(kind)
    _iteration[0] = Histogram("riaktq_iteration_duration_seconds",
                              "Time one scheduler iteration took (commit, assign, rollback).",
                              buckets=ITERATION_BUCKETS, registry=registry)
    requests = Counter("riaktq_store_requests", "Store operations made by this process, by operation.",
                       ["operation"], registry=registry)
    errors = Counter("riaktq_store_errors", "Store operations that failed, by operation and kind.",
                     ["operation", "kind"], registry=registry)
    _store_counters[0] = (requests, errors)
    hints = Counter("riaktq_hints", "Wake-up hints: received (one per look, after coalescing), ignored"
                    " (datagrams without this queue's tag), sent.", ["event"], registry=registry)
    for event in HINT_EVENTS:
        _hints[event] = hints.labels(event)
    return registry
