"""The rows a run produces, and which rows every full run must have.

A row is one figure:

    {"workload": "drain", "system": "riaktq-sqlite", "value": 2150.0,
     "unit": "tasks/s", "params": {"tasks": 10000, "workers": 4, ...},
     "note": "...", "reason": "..."}

`params` holds the parameters the figure was measured with (a dict, so that
a reader of the JSON can compare like with like); `note` says what else a
reader needs (spread of runs, CPU split); `value` is None when the figure
could not be measured, and then `reason` says why.

Some workloads have several figures per system (requests per task by kind,
raw rates by connection count, idle CPU by process): a Figure names the
params key that tells them apart (its `vary` key), so a row is named by
(workload, variant, system). Every workload module declares its Figures;
a full run fills every (figure, variant, system) with a number or a reason,
so a missing row is a bug, not an accident of the run.
"""

SQLITE, RIAK, HUEY = "riaktq-sqlite", "riaktq-riak", "huey-sqlite"
# The Riak store over Riak's Protocol Buffers API (RIAK is over HTTP): same node, same run.
RIAK_PB = "riaktq-riak-pb"
# The peers a Riak operator would weigh instead: Celery and RQ, each on a Redis the run starts.
CELERY, RQ = "celery-redis", "rq-redis"
SYSTEMS = (SQLITE, RIAK, RIAK_PB, HUEY, CELERY, RQ)
RIAK_SYSTEMS = (RIAK, RIAK_PB)
REDIS_PEERS = (CELERY, RQ)


class Figure:
    """One kind of row: its workload name, unit, table label and direction."""

    def __init__(self, workload, unit, label, higher=True, vary=None, variants=(None,), ratio=True):
        self.workload = workload
        self.unit = unit
        self.label = label
        self.higher = higher          # higher is better (for the table's ↓ mark)
        self.vary = vary              # the params key that tells variants apart
        self.variants = tuple(variants)
        self.ratio = ratio            # show riaktq/huey ratios in the table

    def keys(self):
        return [(self.workload, v) for v in self.variants]


class Results:
    """Rows by (workload, variant, system), in the order the Figures give."""

    def __init__(self, figures):
        self.figures = {f.workload: f for f in figures}
        self.rows = {}

    def _row(self, workload, system, value, variant, params):
        figure = self.figures[workload]
        params = dict(params or {})
        if figure.vary is not None:
            if variant is None:
                raise ValueError(f"{workload}: a variant ({figure.vary}) is needed")
            params[figure.vary] = variant
        row = {"workload": workload, "system": system,
               "value": None if value is None else round(float(value), 3),
               "unit": figure.unit, "params": params}
        self.rows[(workload, variant, system)] = row
        return row

    def add(self, workload, system, value, params=None, note=None, variant=None):
        row = self._row(workload, system, value, variant, params)
        if note:
            row["note"] = note
        return row

    def na(self, workload, system, reason, variant=None, params=None):
        """Mark not measured; without a variant, every variant of the figure."""
        figure = self.figures[workload]
        variants = [variant] if variant is not None or figure.vary is None else figure.variants
        for v in variants:
            row = self._row(workload, system, None, v, params)
            row["reason"] = reason

    def na_missing(self, workload, system, reason):
        """n/a for each variant of the figure that has no row yet."""
        for variant in self.figures[workload].variants:
            if (workload, variant, system) not in self.rows:
                self.na(workload, system, reason, variant=variant)

    def fill_missing(self, reason):
        for figure in self.figures.values():
            for system in SYSTEMS:
                self.na_missing(figure.workload, system, reason)

    def value(self, workload, system, variant=None):
        row = self.rows.get((workload, variant, system))
        return None if row is None else row["value"]

    def as_list(self):
        order = {key: i for i, key in enumerate(k for f in self.figures.values() for k in f.keys())}
        return sorted(self.rows.values(),
                      key=lambda r: (order.get(row_key(r, self.figures)[:2], 10**6),
                                     SYSTEMS.index(r["system"])))


def row_key(row, figures):
    """(workload, variant, system) of a row read back from JSON."""
    figure = figures[row["workload"]]
    variant = row["params"].get(figure.vary) if figure.vary else None
    return row["workload"], variant, row["system"]


def required(figures):
    """Every (workload, variant, system) a full run must report."""
    return [(w, v, s) for f in figures for (w, v) in f.keys() for s in SYSTEMS]
