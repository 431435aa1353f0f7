"""The one configuration file every riaktq process shares.

Found as `--config PATH`, else `$RIAKTQ_CONFIG`, else `./riaktq.toml`; with
none, the embedded SQLite store at `./riaktq.db`. The schema below is the
whole truth: an unknown section or key is an error that names it, because a
misspelt `instance_timout` silently ignored is a queue that behaves wrongly.
"""

import os

from riaktq_cli.config import settings
from riaktq_cli.core.errors import ConfigError

DEFAULT_NAME = "riaktq.toml"
PASSWORD_ENV = settings.declared("riak", "password").env
STATUS_CHOICES = ("todo", "nextup", "done", "failed")


# section -> key -> (checker, default), from the declarations in settings.py:
# the file, the flags and `riaktq init`'s template share one list.
SCHEMA = {}
for _s in settings.DECLARED:
    SCHEMA.setdefault(_s.section, {})[_s.key] = (_s.parse, _s.default)
del _s
check_node_url = settings.check_node_url
QUERY_KEYS = {"key", "status", "age"}
QUERY_AGE = settings.Duration(0, low_open=False)


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

    def __init__(self, path, values, queries=None, from_file=(), schedule_tables=(), backend_reason=None):
        self.path = path          # the file read (absolute str), or None for built-in defaults
        self.backend_reason = backend_reason or backend_reason_for(path, {})  # why this store
        self.values = values      # section -> key -> checked value
        self.queries = queries or []
        self.from_file = set(from_file)  # (section, key) the file sets; the rest are defaults
        self.schedule_tables = schedule_tables  # the [[schedule]] tables as read
        self._schedules = None

    @property
    def schedules(self):
        """The checked [[schedule]] tables (schedules.py): parsed when first
        asked for -- by the scheduler at start, `riaktq schedules` -- so that
        `riaktq open` never pays for the cron parser."""
        if self._schedules is None:
            from riaktq_cli.config import schedules
            self._schedules = schedules.parse(self.schedule_tables, self.path) if self.schedule_tables else []
        return self._schedules

    def get(self, section, key):
        return self.values[section][key]

    def source(self, section, key):
        """"file" or "default": where the value came from."""
        return "file" if (section, key) in self.from_file else "default"

    @property
    def backend(self):
        return self.get("store", "backend")

    def _relative(self, path):
        """A path from the file: relative ones are relative to the config file."""
        path = os.path.expanduser(path)
        base = os.path.dirname(self.path) if self.path else os.getcwd()
        return os.path.join(base, path)

    @property
    def sqlite_path(self):
        """The database file; relative paths are relative to the config file."""
        return self._relative(self.get("sqlite", "path"))

    def riak_file(self, key):
        """[riak] ca_file / cert_file / key_file as a path, or None."""
        value = self.get("riak", key)
        return self._relative(value) if value else None

    def riak_credentials(self):
        """(username, Secret) for Riak, or (None, None) without security.

        The password comes from $RIAKTQ_RIAK_PASSWORD, else `password`, else
        `password_file` (whose first line is the password; a file others can
        read gets a warning). Read only when the Riak store opens, so a
        missing file never stops the SQLite store."""
        username = self.get("riak", "username")
        password, source = settings.resolve(settings.declared("riak", "password"), config=self)
        if password is None and self.get("riak", "password_file"):
            password = _read_password_file(self.riak_file("password_file"))
        if username is None and password is not None:
            source = f"${PASSWORD_ENV}" if source == "env" else "[riak] password"
            raise ConfigError(f"{self._where()}{source} is set but [riak] username is not")
        if username is not None and password is None:
            raise ConfigError(f"{self._where()}[riak] username {username!r} has no password: set "
                              f"password_file (or password, or ${PASSWORD_ENV})")
        return username, password

    def _where(self):
        return f"config file {self.path}: " if self.path else "config: "

    def describe_store(self):
        if self.backend == "sqlite":
            return f"sqlite {self.sqlite_path}"
        return "riak " + ", ".join(self.get("riak", "nodes"))

    def queue_identity(self):
        """Which queue this is, spelled the same by every process on every
        machine that shares it: the SQLite file, or Riak's bucket type and
        prefix (not the nodes: each machine may name other nodes of one
        cluster). Wake-up hints carry a tag derived from it, so two queues
        on one host do not wake each other."""
        if self.backend == "sqlite":
            return "sqlite:" + os.path.realpath(self.sqlite_path)
        return f"riak:{self.get('riak', 'bucket_type')}/{self.get('riak', 'prefix')}"

    def first_node(self):
        """"host:port" of the first Riak node, None on SQLite: `auto` hints
        listen on the local address that reaches it."""
        if self.backend == "sqlite":
            return None
        return self.get("riak", "nodes")[0].partition("://")[2].split("/", 1)[0]

    def store_line(self):
        """Which store this process uses and why, in one line: the scheduler
        and workers log it at start, `check` and `init` print it -- a [riak]
        section switches the backend, and that must never go unnoticed."""
        if self.backend == "sqlite":
            where = f"file {self.sqlite_path}"
        else:
            where = "nodes " + ", ".join(self.get("riak", "nodes"))
        return f"store: {self.backend} ({where}, {self.backend_reason})"


def backend_reason_for(path, raw):
    """Why the backend is what it is, as `store_line` says it."""
    if path is None:
        return "the default: no config file"
    if "backend" in raw.get("store", {}):
        return f'backend = "{raw["store"]["backend"]}" in {path}'
    if "riak" in raw:
        return f"from [riak] in {path}"
    return f"the default: no backend in {path}"


def _read_password_file(path):
    """The first line of the file; a warning when group or others may read it."""
    import logging
    import stat
    try:
        with open(path, encoding="utf-8") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            line = fh.readline().rstrip("\r\n")
    except FileNotFoundError:
        raise ConfigError(f"[riak] password_file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"[riak] password_file {path}: cannot read it ({why})") from None
    if not line:
        raise ConfigError(f"[riak] password_file {path}: the first line is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logging.getLogger("riaktq.security").warning(
            "warning: password file %s can be read by other users (mode %03o); chmod 600 it",
            path, stat.S_IMODE(mode))
    from riaktq_cli.riak.security import Secret
    return Secret(line)


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
    """Check a parsed file: every section and key known, every value in
    range, no two contradicting each other."""
    where_file = f"config file {path}: " if path else "config: "
    raw = dict(raw)
    schedule_tables = raw.pop("schedule", [])   # [[schedule]]: checked by schedules.py
    if not isinstance(schedule_tables, list):
        raise ConfigError(f"{where_file}[[schedule]] must be an array of tables")
    for section, content in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{where_file}unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(content, dict):
            raise ConfigError(f"{where_file}[{section}] must be a table")
    values, queries, from_file = {}, [], set()
    for section, keys in SCHEMA.items():
        given = dict(raw.get(section, {}))
        if section == "observer" and "query" in given:
            queries = _queries(given.pop("query"), where_file)
        unknown = set(given) - set(keys)
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"{where_file}unknown key '{name}' in [{section}] (known: {', '.join(keys)})")
        from_file.update((section, key) for key in given)
        values[section] = {}
        for key, (check, default) in keys.items():
            try:
                values[section][key] = check(given.get(key, default))
            except ConfigError as exc:
                raise ConfigError(where_file + str(exc)) from None
    if "riak" in raw and "backend" not in raw.get("store", {}):
        # a [riak] section says where the queue lives; only an explicit
        # `backend = "sqlite"` keeps it on the embedded store
        values["store"]["backend"] = "riak"
    try:
        settings.cross_check(lambda section, key: values[section][key])
    except ConfigError as exc:
        raise ConfigError(where_file + str(exc)) from None
    return Config(path=path, values=values, queries=queries, from_file=from_file, schedule_tables=schedule_tables,
                  backend_reason=backend_reason_for(path, raw))


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
            age = QUERY_AGE.parse(q.get("age", "0s"), f"age of query {key!r}")
        except ConfigError as exc:
            raise ConfigError(where_file + str(exc)) from None
        queries.append(ObserverQuery(key=key, status=status, age=age))
    return queries


TEMPLATE = '''\
# riaktq configuration, shared by every riaktq process (scheduler, workers,
# open, report...). Durations: 250ms, 5s, 1m, 2h, 1d.

[store]
# "sqlite": the embedded store, one machine, many processes.
# "riak": a Riak KV cluster, many machines.
backend = "{backend}"

[sqlite]
# Relative paths are relative to this file.
path = "riaktq.db"
# How long a process waits for another's write lock before giving up.
busy_timeout = "30s"

[riak]
# Every node the processes may talk to; requests spread over healthy ones.
# pb://host:8087 speaks Riak's Protocol Buffers API (faster; pbs:// with
# security on), http://host:8098 its HTTP API (https:// with security on).
nodes = [{nodes}]
# A bucket type with allow_mult = true (see `riaktq check`).
bucket_type = "riaktq"
# Bucket names: <prefix>_task, <prefix>_instance, <prefix>_inbox, <prefix>_scheduler.
prefix = "riaktq"
# Per-request timeout.
timeout = "5s"
# Requests one process keeps in flight at once (the scheduler's reads and
# writes of an iteration go out in parallel over this many connections).
concurrency = 16
# Riak with security enabled (`riak admin security enable`): pbs:// nodes
# (or https://, ~100x slower: it re-checks the password on every request),
# a user and its password. Paths are relative to this file. See docs/riak.md.
# username = "riaktq"
# password_file = "riak-password"    # chmod 600 (or $RIAKTQ_RIAK_PASSWORD, which wins)
# password = "..."                   # in the file itself: keep one of password, password_file
# ca_file = "riak-ca.crt"            # the CA that signed the nodes' certificates; system CAs if absent
# cert_file = "riaktq.crt"           # a client certificate, for Riak's certificate source
# key_file = "riaktq.key"
# verify = true                      # false accepts any certificate: never in production

[scheduler]
# Time between iterations (commit results, assign tasks, roll back lost ones).
# It also runs one as soon as something changes: on the embedded store it
# sees every write; on Riak `open` and the workers send it a wake-up hint
# (a UDP datagram that says "look now"), so this is only the safety net.
interval = "1s"
# Where it takes wake-up hints: "auto" (an ephemeral UDP port on the address
# that reaches the first Riak node; off on the embedded store, which needs
# none), "off", "HOST" or "HOST:PORT" (a port your firewall lets through).
# The address is published in the store; lost hints cost only latency.
hint_listen = "auto"
# An instance without a heartbeat for this long is lost: its tasks go back to todo.
instance_timeout = "30s"
# Tasks queued per instance at most: a number, or "auto" to size each
# instance's queue to what it finishes in two scheduler rounds (1 to 128).
prefetch = "auto"
# Runs of one task that may end with their instance (or handler process)
# lost or crashed before the task ends `failed` ("lost 3 times; ...").
# `riaktq open --max-attempts N` sets it per task.
max_attempts = 3
# A failed task with retries left restarts after this long, doubling per run
# up to retry_delay_max (`riaktq open --retry-delay 30s` sets it per task).
retry_delay = "0s"
retry_delay_max = "1h"
# Once a day, delete done and failed tasks created longer ago than this
# (as `riaktq purge --age`), a few hundred per iteration. Off unless set:
# keep_finished = "30d"
# Instances stopped cleanly or lost for longer than this are forgotten: their
# records are deleted once their results are committed and their tasks rolled
# back (`riaktq instances --forget NAME` does it by hand).
forget_after = "1d"

[worker]
# How often a worker writes its heartbeat.
heartbeat = "2s"
# How often a worker reads its inbox when no wake-up hint came (the
# scheduler sends one after each write to it): the safety net. With hints
# off or blocked on Riak, make it shorter ("500ms"): each read is a GET.
poll = "5s"
# Where it takes wake-up hints, as [scheduler] hint_listen; with a PORT and
# `worker --count K`, instance i takes PORT+i-1.
hint_listen = "auto"
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

# Periodic tasks, opened by the scheduler holding the lease (one task per
# slot, id NAME@SLOT in UTC; see docs/operations.md "Schedules"):
# [[schedule]]
# name = "nightly-report"
# cron = "0 6 * * *"          # or: every = "15m"
# timezone = "UTC"            # an IANA name
# in = "q3"                   # the task's input (or in_file = "path")
# tags = ["reports"]
# priority = 0
# catch_up = "last"           # slots missed while no scheduler ran: "last", "all" or "none"

[log]
# "text": HH:MM:SS lines; "json": one JSON object a line for a log pipeline
# (overridden by --log-format or $RIAKTQ_LOG_FORMAT).
format = "text"
'''


def template(riak_url=None):
    if riak_url:
        return TEMPLATE.format(backend="riak", nodes=f'"{riak_url.rstrip("/")}"')
    return TEMPLATE.format(backend="sqlite", nodes='"http://127.0.0.1:8098"')
