"""Where a workload runs: a fresh store (and its config file) per workload.

SQLite: a new database file. Riak: either the project's test server, one
process per workload (so it shares no GIL with the benchmark and starts
empty), or with `--riak-url` a real node shared by the whole run, where each
workload gets a bucket prefix of its own and, when it ends, every object it
made is deleted by key: the task ids it opened (the workload says which),
the records (instances, inboxes, the scheduler lease) and batch notes found
through riaktq's own record index, and the raw-rate keys. Nothing here lists keys.
"""

import contextlib
import secrets
import select
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench.procs import PROCS, log, riaktq_argv
from scripts.bench.results import RIAK_PB, SQLITE
from scripts.bench.riak_http import RiakHTTP

ROOT = Path(__file__).resolve().parents[2]
TEST_SERVER = "riaktq_testing.riak_sim"  # a module: `python -m` it


class TestServer:
    """`python -m riaktq_testing.riak_sim --port 0` in a process of its own (with
    `pb`, `--pb-port 0` too: `pb_url` is then its Protocol Buffers address)."""

    def __init__(self, workdir, pb=False, secure=False):
        log_path = Path(workdir) / "riak-server.log"
        extra = ["--pb-port", "0"] if pb else []
        self.ca_file = None
        if secure:  # Riak security on: TLS (a CA made into workdir) and the transcripts' users
            extra += ["--secure", str(Path(workdir) / "tls")]
            self.ca_file = str(Path(workdir) / "tls" / "ca.pem")
        self.proc = PROCS.start([sys.executable, "-m", TEST_SERVER, "--port", "0", *extra], cwd=workdir,
                                log_path=log_path, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        first = self.proc.stdout.readline() if ready else ""
        if not first.startswith("listening on "):
            tail = ""
            with contextlib.suppress(OSError):
                lines = log_path.read_text().strip().splitlines()
                tail = lines[-1] if lines else ""
            self.close()
            raise RuntimeError(f"test server did not start: {(first.strip() or tail)[:200]}")
        self.url = first.split("listening on ", 1)[1].strip()
        self.pb_url = None
        if pb:
            # printed right after the first line (often read with it into the buffer, so
            # select() on the pipe would not see it): read it directly
            second = self.proc.stdout.readline()
            if not second.startswith("listening on pb://"):
                self.close()
                raise RuntimeError(f"test server gave no PB port: {second.strip()[:200]!r}")
            self.pb_url = second.split("listening on ", 1)[1].strip()
            if secure:  # the client asks for StartTls on pbs:// addresses
                self.pb_url = self.pb_url.replace("pb://", "pbs://", 1)
        self.url = self.url.split(" ", 1)[0]  # a secure server adds "CA <file>"

    def close(self):
        PROCS.stop(self.proc, timeout=5.0)


class RiakTarget:
    """The Riak the run uses: the test server (url None) or one node."""

    def __init__(self, url=None, bucket_type="riaktq", pb_url=None):
        self.url = url.rstrip("/") if url else None
        self.pb_url = pb_url.rstrip("/") if pb_url else None  # the same node's PB address
        self.bucket_type = bucket_type
        self.run_id = secrets.token_hex(3)
        self.count = 0

    @property
    def is_node(self):
        return self.url is not None

    def describe(self):
        if self.is_node:
            pb = f" (PB {self.pb_url})" if self.pb_url else ""
            return f"Riak node {self.url}{pb}, bucket type {self.bucket_type}, prefixes rtqbench{self.run_id}-*"
        return "the Riak test server (riaktq_testing.riak_sim), one process per workload"

    def unavailable_reason(self):
        if not self.is_node and importlib.util.find_spec(TEST_SERVER) is None:
            return f"riak store not available: {TEST_SERVER} not installed"
        try:
            import riaktq_cli.store.riak  # noqa: F401
        except ImportError as exc:
            return f"riak store not available: {exc}"
        return None

    def pb_unavailable_reason(self):
        """Why the Riak store cannot be measured over PB in this run (None: it can)."""
        if self.is_node and not self.pb_url:
            return "give the node's PB address with --riak-pb pb://host:8087 (as well as --riak-url)"
        if not self.is_node:
            try:
                from riaktq_testing.riak_sim import pb_front  # noqa: F401
            except ImportError as exc:
                return f"the test server has no PB port here: {exc}"
        return None

    def new_prefix(self):
        self.count += 1
        return f"rtqbench{self.run_id}-{self.count}"


class Workspace:
    """A fresh store and config file for one workload on one system.

    `ws.created(ids)` records the task ids the workload opened (for the
    clean-up on a real node); `ws.http` is the plain HTTP view of the node.
    """

    # The user the test server's --secure grants everything (as in the 09 transcripts).
    SECURE_USER = ("riaktq", "s3cret-pw")

    def __init__(self, ctx, system, tag, secure=False):
        self.system = system
        self.dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=ctx.root))
        self.server = None
        self.http = None
        self.store = None
        self.task_ids = []
        self.raw_keys = []
        self.target = ctx.riak
        try:
            if system == SQLITE:
                text = f'[store]\nbackend = "sqlite"\n[sqlite]\npath = "{self.dir / "riaktq.db"}"\n'
            else:
                pb = system == RIAK_PB
                if self.target.is_node:
                    http_url, pb_url = self.target.url, self.target.pb_url
                else:
                    self.server = TestServer(self.dir, pb=pb, secure=secure)
                    http_url, pb_url = self.server.url, self.server.pb_url
                # the node's counters and the clean-up always go over HTTP
                url = pb_url if pb else http_url
                self.url = url
                self.prefix = self.target.new_prefix()
                self.btype = self.target.bucket_type
                self.http = RiakHTTP(http_url)
                text = (f'[store]\nbackend = "riak"\n[riak]\nnodes = ["{url}"]\n'
                        f'bucket_type = "{self.btype}"\nprefix = "{self.prefix}"\n')
                if secure:
                    password_file = self.dir / "riak-password"
                    password_file.write_text(self.SECURE_USER[1] + "\n")
                    password_file.chmod(0o600)
                    text += (f'username = "{self.SECURE_USER[0]}"\npassword_file = "{password_file}"\n'
                             f'ca_file = "{self.server.ca_file}"\n')
            self.config = self.dir / "riaktq.toml"
            self.config.write_text(text)
            from riaktq_cli.config import load
            from riaktq_cli.store import open_store
            self.store = open_store(load(str(self.config)))
        except BaseException:
            self.close()
            raise

    def created(self, ids):
        self.task_ids.extend(ids)

    def cli(self, *args):
        return riaktq_argv() + ["--config", str(self.config), *args]

    def start(self, name, *args):
        return PROCS.start(self.cli(*args), cwd=self.dir, log_path=self.dir / f"{name}.log")

    def counters(self):
        """The node's request totals now (Riak only)."""
        return self.http.counters()

    def close(self):
        if self.store is not None and self.http is not None and self.target.is_node:
            self._clean_up()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        if self.http is not None:
            self.http.close()
        if self.server is not None:
            self.server.close()

    def _clean_up(self):
        """Delete every object this workspace made on the node, by key."""
        from riaktq_cli.store.base import LEASE_NAME, RECORD_KINDS, SCHEDULER
        keys = [(f"{self.prefix}_task", tid) for tid in dict.fromkeys(self.task_ids)]
        # a released lease keeps its copy (expired) so epochs only grow: not a record, deleted by name
        keys.append((f"{self.prefix}_{SCHEDULER}", LEASE_NAME))
        keys += [(f"{self.prefix}_raw", key) for key in self.raw_keys]
        for kind in RECORD_KINDS:
            try:
                names = self.store.list_records(kind)  # riaktq's record index, not a key listing
            except Exception as exc:
                log(f"clean-up of {self.prefix}: cannot find the {kind} records: {exc}")
                continue
            keys += [(f"{self.prefix}_{kind}", name) for name in names]
        from riaktq_cli.store.riak_notes import NOTES, OpeningNotes
        try:
            keys += [(f"{self.prefix}_{NOTES}", name) for name in OpeningNotes(self.store).names()]
        except Exception as exc:
            log(f"clean-up of {self.prefix}: cannot find the batch notes: {exc}")
        try:
            took = self.http.parallel(lambda bk: self.http.delete(self.btype, *bk), keys, 16)
            log(f"clean-up of {self.prefix}: {len(keys)} objects deleted in {took:.1f}s")
        except Exception as exc:
            log(f"clean-up of {self.prefix} on {self.target.url} incomplete: {exc}")


def new_tasks(prefix, start, count, now=None):
    from riaktq_cli import task as transitions
    from riaktq_cli.clock import now_us
    return [transitions.new_task(f"{prefix}{i:08d}", b"x", now=now if now is not None else now_us())
            for i in range(start, start + count)]


def fill(ws, n, prefix="t", batch=500):
    """Open n tasks through the store API, in batches as `open --batch` does."""
    for start in range(0, n, batch):
        tasks = new_tasks(prefix, start, min(batch, n - start))
        ws.created(t.id for t in tasks)
        errors = ws.store.create_tasks(tasks)
        if any(errors):
            raise RuntimeError(f"create_tasks refused: {next(e for e in errors if e)}")


def wait_ready(ws, k, alive, timeout=60.0):
    """Until the scheduler iterates with all `k` workers: each of k instance
    records has an inbox addressed to its process (the scheduler writes one
    on its first iteration that sees the instance). On Riak a scheduler
    holds off for the lease's settle time (2 s by default) after taking it,
    so a fixed pause is not enough: tasks opened before this count their
    wait for the start-up, not the queue's latency."""
    from scripts.bench.procs import wait_until
    from riaktq_cli.store.base import INBOX, INSTANCE

    def ready():
        records = ws.store.list_records(INSTANCE)
        return len(records) >= k and all((ws.store.get_record(INBOX, name) or {}).get("token") == rec.get("token")
                                         for name, rec in records.items())
    wait_until(ready, timeout, f"the scheduler and {k} workers up", every=0.1, alive=alive)


def finished_count(store):
    counts = store.count_by_status()
    return counts.get("done", 0) + counts.get("failed", 0)

