"""Every setting, declared once, and the one way a command resolves them.

A setting is declared here with its config key, its flag (or why it has
none), its environment variable where one makes sense, its type and range,
its default and its help. From these declarations come the config file's
schema (`config.SCHEMA`), the flags of `scheduler`, `worker`, `observe` and
`--log-format` (`riaktq_cli.cli.options`, the click side), and the checks: a
value is parsed and range-checked by the same code whether it comes from
the file, a flag or the environment, so the three cannot disagree.

Resolution: flag, else environment, else file, else default, in one
function (`resolve`) that every reader goes through -- a command's flags
(`Settings`), the Riak password (`config.Config.riak_credentials`), the log
format at start-up (`cli.py`) -- always with `is None`, never `or`, so
`--instance-timeout 0s` is refused as out of range instead of silently
replaced by the file's value. Cross-checks between
settings (a heartbeat shorter than the instance timeout...) run once on the
resolved whole.

Plain classes and no imports beyond the config errors and the duration
parser: `riaktq open`'s fast lane reads the config through this module, and
its start-up time is the queue's enqueue cost from a shell.
"""

from riaktq_cli.core.durations import parse_duration
from riaktq_cli.core.errors import ConfigError
from riaktq_cli.core.task_checks import TIME_LIMIT_MAX



# --------------------------------------------------------------------------- kinds: type + range

class Duration:
    """A duration (`250ms`, `5s`...) in a range: above `low` (or at least it
    with `low_open=False`), up to `high`; `optional` admits None (unset)."""

    noun, metavar = "duration", "DURATION"

    def __init__(self, low=0.0, *, low_open=True, high=None, optional=False, range_text=None):
        self.low, self.low_open, self.high, self.optional = low, low_open, high, optional
        self.range = range_text or (f"above {low:g}s" if low_open else f"of {low:g}s or more")

    def parse(self, value, what):
        if value is None and self.optional:
            return None
        seconds = parse_duration(value, what)  # a DurationError is a ConfigError
        below = seconds <= self.low if self.low_open else seconds < self.low
        if below or (self.high is not None and seconds > self.high):
            raise ConfigError(f"bad {what} {value!r}: expected a duration {self.range}")
        return seconds


class Integer:
    """A whole number from `low` to `high`; `auto` admits that word too."""

    noun = "number"

    def __init__(self, low, high, *, auto=False):
        self.low, self.high, self.auto = low, high, auto
        self.metavar = "N|auto" if auto else "N"
        self.range = f"from {low} to {high}" + (", or auto" if auto else "")

    def parse(self, value, what):
        if self.auto and value == "auto":
            return value
        if isinstance(value, str) and value.isdigit() and value.isascii():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise ConfigError(f"bad {what} {value!r}: expected a whole number {self.range}")
        return value


class Choice:
    noun, metavar = "value", None

    def __init__(self, *choices):
        self.choices = choices
        self.range = "one of " + ", ".join(choices)

    def parse(self, value, what):
        if value not in self.choices:
            raise ConfigError(f"bad {what} {value!r}: expected {self.range}")
        return value


class Text:
    """A non-empty string; `optional` admits None (unset)."""

    noun, metavar, range = "text", "TEXT", "a non-empty string"

    def __init__(self, *, optional=False):
        self.optional = optional

    def parse(self, value, what):
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"bad {what} {value!r}: expected {self.range}")
        return value


class SecretText(Text):
    """The password stays wrapped: nothing that prints config values shows it."""

    def __init__(self):
        super().__init__(optional=True)

    def parse(self, value, what):
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"bad {what}: expected {self.range}")  # never echo a password
        from riaktq_cli.riak.security import Secret
        return Secret(value)


class Bool:
    noun, metavar, range = "value", None, "true or false"

    def parse(self, value, what):
        if not isinstance(value, bool):
            raise ConfigError(f"bad {what} {value!r}: expected true or false")
        return value


class TimeOfDay:
    noun, metavar, range = "time of day", "HH:MM:SS", "HH:MM:SS (UTC)"

    def parse(self, value, what):
        parts = str(value).split(":")
        try:
            hh, mm, ss = (int(p) for p in parts) if len(parts) == 3 else (None, None, None)
        except ValueError:
            hh = None
        if hh is None or not (0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 60):
            raise ConfigError(f"bad {what} {value!r}: expected HH:MM:SS (UTC)")
        return f"{hh:02d}:{mm:02d}:{ss:02d}"


class HintAddress:
    """Where a process listens for wake-up hints: auto, off, HOST (an
    ephemeral port there) or HOST:PORT ([v6]:PORT)."""

    noun, metavar = "address", "auto|off|HOST[:PORT]"
    range = "auto, off, HOST or HOST:PORT"

    def parse(self, value, what):
        if value in ("auto", "off"):
            return value
        text = value if isinstance(value, str) else ""
        host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
        if not sep:
            host, port = text, "0"
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not bare or any(c.isspace() or c in "/@" for c in bare) or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"bad {what} {value!r}: expected {self.range}, e.g. 0.0.0.0:7400")
        return text


def check_node_url(url, where):
    """A node URL as given in [riak] nodes or `init --riak`.

    Credentials in it are refused, and the refusal shows the URL without
    them: a password in a URL ends up in every log line that names a node.
    """
    if not url.startswith(("http://", "https://", "pb://", "pbs://")):
        raise ConfigError(f"bad {where} {url!r}: expected pb://host:port (Protocol Buffers), "
                          "pbs://host:port (with TLS), http://host:port or https://host:port")
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0]
    if "@" in netloc:
        shown = f"{scheme}://{netloc.rpartition('@')[2]}"
        raise ConfigError(f"bad {where} {shown!r}: credentials in a node URL are refused; "
                          "set username and password_file in [riak] instead")
    return url.rstrip("/")


class Nodes:
    noun, metavar, range = "node list", None, "a non-empty list of pb(s):// or http(s):// URLs without credentials"

    def parse(self, value, what):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"bad {what}: expected a list of URLs such as [\"http://127.0.0.1:8098\"]")
        return [check_node_url(url, f"{what} entry") for url in value]


# --------------------------------------------------------------------------- declarations

STORE_ONLY = "where the queue is: every process must agree, so only the shared file sets it"
SHARED_POLICY = "a standby scheduler that takes over must apply the same, so only the shared file sets it"


class Setting:
    """One setting. `flag` names its command-line option on `commands`;
    without one, `no_flag` says why. `bad` lists values the range refuses
    (the declarations test feeds them through the file)."""

    def __init__(self, section, key, kind, default, help, *, flag=None, commands=(), no_flag=None,
                 env=None, bad=()):
        self.section, self.key, self.kind, self.default, self.help = section, key, kind, default, help
        self.flag, self.commands, self.no_flag, self.env, self.bad = flag, commands, no_flag, env, bad

    @property
    def name(self):
        """`section.key`, as help texts and messages name it."""
        return f"{self.section}.{self.key}"

    @property
    def param(self):
        """The click parameter name: unique, though `--interval` is two settings' flag."""
        return f"{self.section}_{self.key}"

    def parse(self, value, what=None):
        return self.kind.parse(value, what or f"[{self.section}] {self.key}")

    def __repr__(self):
        return f"Setting({self.name})"


S = Setting
DECLARED = [
    S("store", "backend", Choice("sqlite", "riak"), "sqlite", "sqlite (embedded) or riak.",
      no_flag=STORE_ONLY, bad=("redis",)),
    S("sqlite", "path", Text(), "riaktq.db", "The database file, relative to the config file.",
      no_flag=STORE_ONLY, bad=("",)),
    S("sqlite", "busy_timeout", Duration(0, low_open=False), "30s",
      "How long a process waits for another's write lock.", no_flag=STORE_ONLY, bad=("-1s", "5")),
    S("riak", "nodes", Nodes(), ["http://127.0.0.1:8098"], "The nodes to talk to.",
      no_flag=STORE_ONLY, bad=([], ["ftp://x"], ["http://u:p@h:1"])),
    S("riak", "bucket_type", Text(), "riaktq", "A bucket type with allow_mult = true.",
      no_flag=STORE_ONLY, bad=("",)),
    S("riak", "prefix", Text(), "riaktq", "Bucket names start with it.", no_flag=STORE_ONLY, bad=("",)),
    S("riak", "timeout", Duration(), "5s", "Per-request timeout.", no_flag=STORE_ONLY, bad=("0s",)),
    S("riak", "concurrency", Integer(1, 256), 16, "Requests one process keeps in flight.",
      no_flag=STORE_ONLY, bad=(0, 257, "x")),
    S("riak", "username", Text(optional=True), None, "Riak security: the user.",
      no_flag=STORE_ONLY, bad=("",)),
    S("riak", "password", SecretText(), None, "Riak security: the password.",
      no_flag="a password on a command line shows in `ps`; the file or $RIAKTQ_RIAK_PASSWORD",
      env="RIAKTQ_RIAK_PASSWORD", bad=("",)),
    S("riak", "password_file", Text(optional=True), None, "Riak security: a file holding the password.",
      no_flag=STORE_ONLY, bad=("",)),
    S("riak", "ca_file", Text(optional=True), None, "The CA of the nodes' certificates.",
      no_flag=STORE_ONLY, bad=("",)),
    S("riak", "cert_file", Text(optional=True), None, "A client certificate.", no_flag=STORE_ONLY, bad=("",)),
    S("riak", "key_file", Text(optional=True), None, "The client certificate's key.",
      no_flag=STORE_ONLY, bad=("",)),
    S("riak", "verify", Bool(), True, "Check the nodes' certificates.", no_flag=STORE_ONLY, bad=("yes",)),
    S("scheduler", "interval", Duration(), "1s", "Time between iterations.",
      flag="--interval", commands=("scheduler",), bad=("0s",)),
    S("scheduler", "instance_timeout", Duration(), "30s", "No heartbeat for this long = instance lost.",
      flag="--instance-timeout", commands=("scheduler",), bad=("0s",)),
    S("scheduler", "prefetch", Integer(1, 100_000, auto=True), "auto",
      "Tasks queued per instance at most; auto adapts it to each instance's pace.",
      flag="--prefetch", commands=("scheduler",), bad=(0, "0", 100_001, "many")),
    S("scheduler", "max_attempts", Integer(1, 1000), 3,
      "Runs of a task that may end with their instance lost or crashed before it fails.",
      no_flag="a property of each task: `open --max-attempts N`; this is the default for tasks without one",
      bad=(0, 1001)),
    S("scheduler", "retry_delay", Duration(0, low_open=False, high=TIME_LIMIT_MAX, range_text="from 0s up to 366d"),
      "0s", "A restart waits this long after the failed run, doubling per run (0s: restart at once).",
      no_flag=SHARED_POLICY + "; `open --retry-delay` sets it per task", bad=("-1s", "367d")),
    S("scheduler", "retry_delay_max", Duration(high=TIME_LIMIT_MAX, range_text="above 0s, up to 366d"), "1h",
      "The longest a restart's back-off grows to.", no_flag=SHARED_POLICY, bad=("0s", "367d")),
    S("scheduler", "keep_finished", Duration(optional=True), None,
      "Once a day the scheduler deletes done and failed tasks created longer ago than this (unset: never).",
      no_flag=SHARED_POLICY, bad=("0s", "30")),
    S("scheduler", "hint_listen", HintAddress(), "auto",
      "Where the scheduler takes wake-up hints (UDP): auto (an ephemeral port on the address that reaches the"
      " store; off on the embedded store, which has its own), off, HOST or HOST:PORT.",
      flag="--hint-listen", commands=("scheduler",), bad=("10.0.0.1:99999", "", "a b")),
    S("scheduler", "forget_after", Duration(), "1d",
      "Instances stopped or lost for longer than this are forgotten (their records deleted) once the scheduler"
      " has committed their results and rolled back their tasks.",
      flag="--forget-after", commands=("scheduler",), bad=("0s", "soon")),
    S("worker", "heartbeat", Duration(), "2s", "How often a worker writes its heartbeat.",
      flag="--heartbeat", commands=("worker",), bad=("0s",)),
    S("worker", "poll", Duration(), "5s",
      "How often a worker reads its inbox when nothing wakes it (a wake-up hint, or a write to the embedded store).",
      flag="--poll", commands=("worker",), bad=("0s",)),
    S("worker", "hint_listen", HintAddress(), "auto",
      "Where a worker takes wake-up hints (UDP), as [scheduler] hint_listen; with --count K and a PORT,"
      " instance i listens on PORT+i-1.",
      flag="--hint-listen", commands=("worker",), bad=("10.0.0.1:-1", "")),
    S("worker", "time_limit", Duration(high=TIME_LIMIT_MAX, optional=True, range_text="above 0s, up to 366d"),
      None, "Longest run of a task that sets no limit of its own (open --time-limit); past it the task fails.",
      flag="--time-limit", commands=("worker",), bad=("0s", "367d")),
    S("worker", "shutdown_grace", Duration(0, low_open=False), "30s",
      "On SIGTERM/SIGINT, how long the task at hand may still run before it is stopped and handed back.",
      flag="--shutdown-grace", commands=("worker",), bad=("-1s",)),
    S("observer", "time", TimeOfDay(), "00:00:00", "Run the queries once a day after this UTC time.",
      flag="--time", commands=("observe",), bad=("25:00:00", "noon")),
    S("observer", "interval", Duration(), "1m", "Time between checks.",
      flag="--interval", commands=("observe",), bad=("0s",)),
    S("log", "format", Choice("text", "json"), "text",
      "Log lines on stderr as text or as one JSON object a line.",
      flag="--log-format", commands=("riaktq",), env="RIAKTQ_LOG_FORMAT", bad=("xml",)),
]
del S
BY_NAME = {(s.section, s.key): s for s in DECLARED}


def declared(section, key):
    return BY_NAME[(section, key)]


def for_command(command):
    """The settings whose flags `command` takes, in declaration order."""
    return [s for s in DECLARED if command in s.commands]


# --------------------------------------------------------------------------- cross-checks

def cross_check(get, where=lambda section, key: f"[{section}] {key}", source=lambda section, key: "file"):
    """Settings that are each in range but contradict each other. `get(section,
    key)` reads the resolved value; `where` names a setting's source and
    `source` says which it is ("flag", "env", "file", "default")."""
    heartbeat, timeout = get("worker", "heartbeat"), get("scheduler", "instance_timeout")
    if heartbeat >= timeout:
        raise ConfigError(
            f"{where('worker', 'heartbeat')} {heartbeat:g}s must be shorter than "
            f"{where('scheduler', 'instance_timeout')} {timeout:g}s: every worker would look lost")
    if get("riak", "password") is not None and get("riak", "password_file") \
            and source("riak", "password") != "env":  # $RIAKTQ_RIAK_PASSWORD wins over the file's
        raise ConfigError("[riak] has both password and password_file; keep one")
    if get("riak", "key_file") and not get("riak", "cert_file"):
        raise ConfigError("[riak] key_file needs cert_file (the client certificate)")


# --------------------------------------------------------------------------- resolution

class Given:
    """A value from the command line and how the user spelled it, so a
    supervisor passes `--poll 0.05ms` on as written, never re-formatted."""

    __slots__ = ("value", "text")

    def __init__(self, value, text):
        self.value, self.text = value, text


def resolve(s, given=None, environ=None, config=None):
    """(value, source) of setting `s`: the flag given, else its environment
    variable, else the config file, else the default. The one precedence
    every setting goes through -- a command's flags (`Settings`), the Riak
    password (`Config.riak_credentials`), the log format before the config
    is read (config=None: (None, None) when neither flag nor env sets it).
    `is None`, never `or`: a flag's 0s is refused, not replaced."""
    if given is not None:
        return given.value, "flag"
    if environ is None:
        import os
        environ = os.environ
    if s.env and environ.get(s.env):
        return s.parse(environ[s.env], f"${s.env}"), "env"
    if config is None:
        return None, None
    return config.get(s.section, s.key), config.source(s.section, s.key)


class Settings:
    """The resolved settings of one command: the config file (or defaults)
    under the environment under the flags given. `get` as on Config."""

    def __init__(self, config, given=None, environ=None):
        self.config = config
        self.given = {s: g for s, g in (given or {}).items() if g is not None}
        self.sources, self._values = {}, {}
        for s in DECLARED:
            self._values[(s.section, s.key)], self.sources[s] = resolve(s, self.given.get(s), environ, config)
        cross_check(self.get, self._where, self._source)

    def _source(self, section, key):
        return self.sources[BY_NAME[(section, key)]]

    def get(self, section, key):
        return self._values[(section, key)]

    def _where(self, section, key):
        s = BY_NAME[(section, key)]
        source = self.sources[s]
        if source == "flag":
            return s.flag
        if source == "env":
            return f"${s.env}"
        return f"[{section}] {key}" + (" (default)" if source == "default" else "")

    def flag_argv(self):
        """The flags given on the command line, as the user wrote them."""
        argv = []
        for s, g in self.given.items():
            argv += [s.flag, g.text]
        return argv
