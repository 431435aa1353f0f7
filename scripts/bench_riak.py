"""Runs the Riak test server (tests/riak_server.py) in a process of its own
for `scripts/bench.py`, and answers its questions about request counters.

Own process, so the server does not share a GIL with the benchmark's
opener/poller; a line protocol on stdin/stdout, so the benchmark can still
read and reset the server's counters:

    stdout, first line:  {"url": "http://127.0.0.1:PORT"}   (or {"error": "..."})
    stdin "counts"    -> {"total": N, "by": {kind: n, ...}}
    stdin "reset"     -> {"ok": true}
    stdin "quit" / EOF -> the server stops, the process exits
"""

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_server_class():
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("tests.riak_server").RiakTestServer
    except ImportError:
        sys.path.insert(0, str(ROOT / "tests"))
        return importlib.import_module("riak_server").RiakTestServer


def _start(server):
    for name in ("start", "serve_in_background", "__enter__"):
        fn = getattr(server, name, None)
        if callable(fn):
            fn()
            return


def _stop(server):
    for name in ("stop", "shutdown", "close"):
        fn = getattr(server, name, None)
        if callable(fn):
            fn()
            return
    exit_fn = getattr(server, "__exit__", None)
    if callable(exit_fn):
        exit_fn(None, None, None)


def _counts(server):
    counts = server.counts
    if callable(counts):
        counts = counts()
    if isinstance(counts, (int, float)):
        return {"total": int(counts), "by": {}}
    by = {}
    for key, value in dict(counts).items():
        label = " ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        if isinstance(value, (int, float)):
            by[label] = int(value)
    # A counter may carry its own total; otherwise the sum of the kinds.
    for total_key in ("total", "requests", "all"):
        if total_key in by:
            return {"total": by[total_key], "by": by}
    return {"total": sum(by.values()), "by": by}


def main():
    try:
        cls = _load_server_class()
        server = cls(port=0)
        _start(server)
        url = server.url
    except Exception as exc:  # reported to the benchmark as the n/a reason
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"url": url}), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip()
            try:
                if cmd == "counts":
                    reply = _counts(server)
                elif cmd == "reset":
                    server.reset_counts()
                    reply = {"ok": True}
                elif cmd == "quit":
                    break
                else:
                    reply = {"error": f"unknown command {cmd!r}"}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)
    finally:
        _stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
