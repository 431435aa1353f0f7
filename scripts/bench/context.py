"""What every workload module gets: the arguments, the rows, and the rule
that a failure of one system becomes an n/a reason on its rows instead of
ending the run (a broken Riak must not cost the SQLite figures)."""

from scripts.bench.procs import log, short_reason
from scripts.bench.results import HUEY, REDIS_PEERS, RIAK, RIAK_PB, RIAK_SYSTEMS, SQLITE


class Context:
    def __init__(self, args, results, root, riak, huey_reason, peer_reasons):
        self.args = args
        self.results = results
        self.root = root
        self.riak = riak                  # sites.RiakTarget
        self.huey_reason = huey_reason    # None when Huey can be measured
        self.peer_reasons = peer_reasons  # {celery-redis/rq-redis: None when it can be measured}
        self.riak_reason = riak.unavailable_reason()
        self.riak_pb_reason = self.riak_reason or riak.pb_unavailable_reason()
        self.quick = args.quick
        self.n = args.n or (500 if args.quick else 10_000)
        self.n_riak = args.n_riak or (200 if args.quick else 2_000)
        # The Redis peers drain as many as riaktq's defaults drain, but fewer in --quick (the
        # test suite's mode): RQ forks a process per job, 60-70 jobs/s on 2 cores.
        self.n_peers = args.n or (200 if args.quick else 10_000)
        self.k = args.workers

    def n_for(self, system):
        return self.n_riak if system in RIAK_SYSTEMS else self.n

    def riaktq_systems(self):
        return [SQLITE, RIAK]

    def riaktq_run(self, workloads, system, fn):
        """fn(system) for one riaktq system; a failure becomes the reason of
        every row of `workloads` it left without a value."""
        reason = {RIAK: self.riak_reason, RIAK_PB: self.riak_pb_reason}.get(system)
        if reason:
            for w in workloads:
                self.results.na_missing(w, system, reason)
            return
        self._guarded(workloads, system, lambda: fn(system),
                      "riak store failed: " if system in RIAK_SYSTEMS else "")

    def huey_run(self, workloads, fn):
        if self.huey_reason:
            for w in workloads:
                self.results.na_missing(w, HUEY, self.huey_reason)
            return
        self._guarded(workloads, HUEY, fn, "")

    def peer_run(self, workloads, fn):
        """fn(system) for each Redis peer that can be measured."""
        for system in REDIS_PEERS:
            if self.peer_reasons.get(system):
                for w in workloads:
                    self.results.na_missing(w, system, self.peer_reasons[system])
            else:
                self._guarded(workloads, system, lambda: fn(system), "")

    def _guarded(self, workloads, system, fn, prefix):
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            reason = prefix + short_reason(exc)
            log(f"{system} {workloads[0]}: {reason}")
            for w in workloads:
                self.results.na_missing(w, system, reason)


# The groups that measure the Riak store on both APIs; elsewhere its PB rows say so.
PB_GROUPS = ("raw", "drain", "requests")
# The groups that measure the Redis peers; elsewhere their rows say so.
PEER_GROUPS = ("drain", "latency")
NOT_FOR_PEERS = "not measured for the Redis peers (they are in the drain and latency groups)"
