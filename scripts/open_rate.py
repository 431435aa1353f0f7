"""How fast tasks go in: from Python through the API, and `riaktq open` per process.

    .venv/bin/python -m scripts.open_rate [--tasks N] [--procs N] [--riak-url URL]

Prints tasks opened per second for `Queue.open` (one task a call),
`Queue.open_many` (one round of writes) and one `riaktq open` process per
task, on the embedded store and on Riak (the project's test server unless
--riak-url names a node). The process figure also gives the median start-up
beside `python -c pass`, run round robin so drift on a busy machine hits
each alike. Nothing here is asserted: these are figures for a note.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def write_config(directory, backend, riak_url=None):
    path = Path(directory) / f"{backend}.toml"
    if backend == "sqlite":
        body = f'[store]\nbackend = "sqlite"\n[sqlite]\npath = "{Path(directory) / "riaktq.db"}"\n'
    else:
        prefix = "r" + uuid.uuid4().hex[:10]
        body = f'[store]\nbackend = "riak"\n[riak]\nnodes = ["{riak_url}"]\nprefix = "{prefix}"\n'
    path.write_text(body)
    return path


def riaktq_argv():
    script = Path(sys.executable).with_name("riaktq")
    return [str(script)] if script.exists() else [sys.executable, "-m", "riaktq_cli"]


def per_process(config, runs, baseline=None, bare=True):
    """Median ms per `riaktq --config F open` process, and of `python -c
    pass`, run round robin; with `bare`, also `riaktq open` with no config
    file (the embedded store in the working directory: no TOML parser).
    `baseline`: a directory holding another riaktq_cli (`git archive REV
    riaktq_cli | tar -x -C DIR`), timed in the same rounds ("...@base")."""
    import os
    argv = {"config": lambda n: riaktq_argv() + ["--config", str(config), "open", n, "--in", "x"]}
    if bare:
        argv["bare"] = lambda n: riaktq_argv() + ["open", n, "--in", "x"]
    cases = {name: (make, None) for name, make in argv.items()}
    if baseline:
        env = dict(os.environ, PYTHONPATH=str(Path(baseline).resolve()))
        cases.update({f"{name}@base": (make, env) for name, make in argv.items()})
    cases["floor"] = (lambda n: [sys.executable, "-c", "pass"], None)
    times = {name: [] for name in cases}
    tag = uuid.uuid4().hex[:6]
    for n in range(runs):
        for name, (make, env) in cases.items():
            started = time.perf_counter()
            subprocess.run(make(f"{name}-{tag}-{n}"), check=True, capture_output=True, cwd=config.parent, env=env)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def through_api(config, count):
    """(tasks/s one per `open` call, tasks/s through `open_many`)."""
    from riaktq_cli import Queue
    tag = uuid.uuid4().hex[:6]
    with Queue.from_config(str(config)) as q:
        started = time.perf_counter()
        for n in range(count):
            q.open(f"one-{tag}-{n}", b"x")
        single = count / (time.perf_counter() - started)
        batch = [{"id": f"many-{tag}-{n}", "data": b"x"} for n in range(count)]
        started = time.perf_counter()
        report = q.open_many(batch)
        many = count / (time.perf_counter() - started)
        assert all(r.ok for r in report), "open_many refused tasks"
    return single, many


def riak_test_server():
    """The project's Riak test server in a process of its own (in this one
    it would share the interpreter lock with the client being measured):
    (process, URL)."""
    import importlib.util
    module = "riaktq_testing.riak_sim" if importlib.util.find_spec("riaktq_testing") else "tests.riak_server"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0"], stdout=subprocess.PIPE,
                            text=True, cwd=root)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the Riak test server did not start: {line!r}")
    return proc, line.split()[2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per API figure")
    parser.add_argument("--procs", type=int, default=30, help="`riaktq open` processes per store")
    parser.add_argument("--riak-url", help="a Riak node (default: the project's test server)")
    parser.add_argument("--startup-only", action="store_true", help="only the per-process figure, SQLite")
    parser.add_argument("--baseline", metavar="DIR", help="also time the riaktq_cli package in DIR")
    args = parser.parse_args(argv)
    server = None
    with tempfile.TemporaryDirectory(prefix="open-rate-") as directory:
        configs = {"sqlite": write_config(directory, "sqlite")}
        if not args.startup_only:
            url = args.riak_url
            if url is None:
                server, url = riak_test_server()
            configs["riak"] = write_config(directory, "riak", url)
        try:
            for backend, config in configs.items():
                ms = per_process(config, args.procs, args.baseline, bare=backend == "sqlite")
                print(f"{backend:6} `riaktq --config F open`, a process per task: {ms['config']:6.1f} ms"
                      f" ({1000 / ms['config']:3.0f} tasks/s); `python -c pass` {ms['floor']:.1f} ms")
                if "bare" in ms:
                    print(f"{backend:6} `riaktq open` with no config file (embedded store): {ms['bare']:.1f} ms")
                for name in (n for n in ms if n.endswith("@base")):
                    print(f"{backend:6}   baseline {args.baseline} ({name[:-5]}): {ms[name]:.1f} ms")
                if args.startup_only:
                    continue
                single, many = through_api(config, args.tasks)
                print(f"{backend:6} Queue.open one per call: {single:8.0f} tasks/s;"
                      f" Queue.open_many: {many:8.0f} tasks/s ({args.tasks} tasks)")
        finally:
            if server is not None:
                server.terminate()
                server.wait()


if __name__ == "__main__":
    main()
