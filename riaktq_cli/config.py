"""The one configuration file every riaktq process shares.

Found as `--config PATH`, else `$RIAKTQ_CONFIG`, else `./riaktq.toml`; with
none, the embedded SQLite store at `./riaktq.db`. The schema below is the
whole truth: an unknown section or key is an error that names it, because a
misspelt `instance_timout` silently ignored is a queue that behaves wrongly.
"""

import os

from riaktq_cli.durations import parse_duration
from riaktq_cli.errors import ConfigError, DurationError

DEFAULT_NAME = "riaktq.toml"
STATUS_CHOICES = ("todo", "nextup", "done", "failed")


def _duration(value, where):
    try:
        return parse_duration(value, where)
    except DurationError as exc:
        raise ConfigError(str(exc)) from None


def _positive_int(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"bad {where} {value!r}: expected a whole number of at least 1")
    return value


def _prefetch(value, where):
    if value == "auto":
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return _positive_int(value, where)


def _attempts(value, where):
    value = _positive_int(value, where)
    if value > 1000:
        raise ConfigError(f"bad {where} {value!r}: expected a whole number from 1 to 1000")
    return value


def _time_limit(value, where):
    """None (no limit), or a duration above 0 and up to the task limit."""
    if value is None:
        return None
    seconds = _duration(value, where)
    from riaktq_cli.task import TIME_LIMIT_MAX
    if not 0 < seconds <= TIME_LIMIT_MAX:
        raise ConfigError(f"bad {where} {value!r}: expected a duration above 0s, up to 366d")
    return seconds


def _text(value, where):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"bad {where} {value!r}: expected a non-empty string")
    return value


def _choice(*choices):
    def check(value, where):
        if value not in choices:
            raise ConfigError(f"bad {where} {value!r}: expected one of {', '.join(choices)}")
        return value
    return check


def _nodes(value, where):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"bad {where}: expected a list of URLs such as [\"http://127.0.0.1:8098\"]")
    for url in value:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"bad {where} entry {url!r}: expected http://host:port")
    return [v.rstrip("/") for v in value]


def _time_of_day(value, where):
    parts = str(value).split(":")
    try:
        hh, mm, ss = (int(p) for p in parts) if len(parts) == 3 else (None, None, None)
    except ValueError:
        hh = None
    if hh is None or not (0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 60):
        raise ConfigError(f"bad {where} {value!r}: expected HH:MM:SS (UTC)")
    return f"{hh:02d}:{mm:02d}:{ss:02d}"


# section -> key -> (checker, default)
SCHEMA = {
    "store": {"backend": (_choice("sqlite", "riak"), "sqlite")},
    "sqlite": {"path": (_text, "riaktq.db"), "busy_timeout": (_duration, "30s")},
    "riak": {
        "nodes": (_nodes, ["http://127.0.0.1:8098"]),
        "bucket_type": (_text, "riaktq"),
        "prefix": (_text, "riaktq"),
        "timeout": (_duration, "5s"),
    },
    "scheduler": {
        "interval": (_duration, "1s"),
        "instance_timeout": (_duration, "30s"),
        "prefetch": (_prefetch, "auto"),
        "max_attempts": (_attempts, 3),
    },
    "worker": {"heartbeat": (_duration, "2s"), "poll": (_duration, "500ms"),
               "time_limit": (_time_limit, None), "shutdown_grace": (_duration, "30s")},
    "observer": {"time": (_time_of_day, "00:00:00"), "interval": (_duration, "1m")},
    "log": {"format": (_choice("text", "json"), "text")},
}
QUERY_KEYS = {"key", "status", "age"}


class ObserverQuery:
    """One `[[observer.query]]`: tasks with `status` created `age` seconds ago or more."""

    def __init__(self, key, status, age):
        self.key, self.status, self.age = key, status, age

    def __repr__(self):
        return f"ObserverQuery(key={self.key!r}, status={self.status!r}, age={self.age!r})"


class Config:
    """The checked configuration. Plain classes and os.path rather than
    dataclasses and pathlib: both cost more start-up time than all of
    `riaktq open` on the embedded store."""

    def __init__(self, path, values, queries=None):
        self.path = path          # the file read (absolute str), or None for built-in defaults
        self.values = values      # section -> key -> checked value
        self.queries = queries or []

    def get(self, section, key):
        return self.values[section][key]

    @property
    def backend(self):
        return self.get("store", "backend")

    @property
    def sqlite_path(self):
        """The database file; relative paths are relative to the config file."""
        path = os.path.expanduser(self.get("sqlite", "path"))
        base = os.path.dirname(self.path) if self.path else os.getcwd()
        return os.path.join(base, path)

    def describe_store(self):
        if self.backend == "sqlite":
            return f"sqlite {self.sqlite_path}"
        return "riak " + ", ".join(self.get("riak", "nodes"))


def locate(explicit=None):
    """Which config file applies, or None for the defaults."""
    if explicit:
        return str(explicit)
    env = os.environ.get("RIAKTQ_CONFIG")
    if env:
        return env
    return DEFAULT_NAME if os.path.exists(DEFAULT_NAME) else None


def load(explicit=None):
    """Read and check the config file (or the defaults)."""
    path = locate(explicit)
    raw = {}
    if path is not None:
        import tomllib  # only when there is a file: it costs start-up time
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except (OSError, IsADirectoryError) as exc:
            raise ConfigError(f"config file {path}: cannot read it ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path}: not UTF-8 text (byte {exc.start})") from None
        path = os.path.abspath(path)
    return from_dict(raw, path)


def from_dict(raw, path=None):
    where_file = f"config file {path}: " if path else "config: "
    values = {}
    queries = []
    for section, content in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{where_file}unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(content, dict):
            raise ConfigError(f"{where_file}[{section}] must be a table")
    for section, keys in SCHEMA.items():
        given = dict(raw.get(section, {}))
        if section == "observer" and "query" in given:
            queries = _queries(given.pop("query"), where_file)
        unknown = set(given) - set(keys)
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"{where_file}unknown key '{name}' in [{section}] (known: {', '.join(keys)})")
        values[section] = {}
        for key, (check, default) in keys.items():
            value = given.get(key, default)
            try:
                values[section][key] = check(value, f"[{section}] {key}")
            except ConfigError as exc:
                raise ConfigError(where_file + str(exc)) from None
    return Config(path=path, values=values, queries=queries)


def _queries(raw, where_file):
    if not isinstance(raw, list):
        raise ConfigError(f"{where_file}[[observer.query]] must be an array of tables")
    queries = []
    seen = set()
    for n, q in enumerate(raw, 1):
        unknown = set(q) - QUERY_KEYS
        if unknown:
            raise ConfigError(f"{where_file}unknown key '{sorted(unknown)[0]}' in [[observer.query]] #{n} (known: key, status, age)")
        key = q.get("key")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where_file}[[observer.query]] #{n} needs a key")
        if key in seen:
            raise ConfigError(f"{where_file}[[observer.query]] key {key!r} appears twice")
        seen.add(key)
        status = q.get("status")
        if status is not None and status not in STATUS_CHOICES:
            raise ConfigError(f"{where_file}bad status {status!r} in query {key!r} (expected one of {', '.join(STATUS_CHOICES)})")
        try:
            age = parse_duration(q.get("age", "0s"), f"age of query {key!r}")
        except DurationError as exc:
            raise ConfigError(where_file + str(exc)) from None
        queries.append(ObserverQuery(key=key, status=status, age=age))
    return queries


TEMPLATE = '''\
# riaktq configuration, shared by every riaktq process (scheduler, workers,
# open, report...). Durations: 250ms, 5s, 1m, 2h, 1d.

[store]
# "sqlite": the embedded store, one machine, many processes.
# "riak": a Riak KV cluster over its HTTP API, many machines.
backend = "{backend}"

[sqlite]
# Relative paths are relative to this file.
path = "riaktq.db"
# How long a process waits for another's write lock before giving up.
busy_timeout = "30s"

[riak]
# Every node the processes may talk to; requests spread over healthy ones.
nodes = [{nodes}]
# A bucket type with allow_mult = true (see `riaktq check`).
bucket_type = "riaktq"
# Bucket names: <prefix>_task, <prefix>_instance, <prefix>_inbox, <prefix>_scheduler.
prefix = "riaktq"
# Per-request timeout.
timeout = "5s"

[scheduler]
# Time between iterations (commit results, assign tasks, roll back lost ones).
# On the embedded store the scheduler also wakes as soon as anything changes;
# on Riak this is the latency floor (each iteration costs a few requests).
interval = "1s"
# An instance without a heartbeat for this long is lost: its tasks go back to todo.
instance_timeout = "30s"
# Tasks queued per instance at most: a number, or "auto" to size each
# instance's queue to what it finishes in two scheduler rounds (1 to 128).
prefetch = "auto"
# Runs of one task that may end with their instance (or handler process)
# lost or crashed before the task ends `failed` ("lost 3 times; ...").
# `riaktq open --max-attempts N` sets it per task.
max_attempts = 3

[worker]
# How often a worker writes its heartbeat.
heartbeat = "2s"
# How often a worker reads its inbox.
poll = "500ms"
# Longest run of a task that sets no limit of its own (`open --time-limit`);
# past it the handler process is killed and the task fails. None unless set:
# time_limit = "10m"
# On SIGTERM/SIGINT, how long the task at hand may still run before it is
# stopped and handed back to the queue (not counted as an attempt).
shutdown_grace = "30s"

[observer]
# `riaktq observe` runs the queries below once a day after this UTC time.
time = "00:00:00"
interval = "1m"

# Named queries for `riaktq report --all-queries` and `riaktq observe`:
# [[observer.query]]
# key = "stuck-todo"
# status = "todo"
# age = "1d"

[log]
# "text": HH:MM:SS lines; "json": one JSON object a line for a log pipeline
# (overridden by --log-format or $RIAKTQ_LOG_FORMAT).
format = "text"
'''


def template(riak_url=None):
    if riak_url:
        return TEMPLATE.format(backend="riak", nodes=f'"{riak_url.rstrip("/")}"')
    return TEMPLATE.format(backend="sqlite", nodes='"http://127.0.0.1:8098"')
