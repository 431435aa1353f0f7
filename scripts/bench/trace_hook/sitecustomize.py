"""Loaded by every Python process started with this directory on PYTHONPATH
(request_sources.py sets it): logs each Riak request the riaktq client makes
-- method, record kind, and the riaktq functions that asked for it -- one
JSON line per request to $RIAKTQ_TRACE_DIR/<pid>.jsonl. A diagnosis aid for
the benchmark, never loaded by riaktq itself."""

import json
import os
import sys

_DIR = os.environ.get("RIAKTQ_TRACE_DIR")


def _install():
    from riaktq_cli.riak import client

    original = client.RiakClient._call
    role = "scheduler" if "scheduler" in sys.argv else "worker" if "worker" in sys.argv else "other"
    path_out = os.path.join(_DIR, f"{os.getpid()}.jsonl")

    def callers():
        chain, frame = [], sys._getframe(2)
        while frame is not None and len(chain) < 4:
            code = frame.f_code
            mod = frame.f_globals.get("__name__", "")
            if mod.startswith("riaktq_cli") and not mod.startswith("riaktq_cli.riak"):
                chain.append(f"{mod.rsplit('.', 1)[-1]}.{code.co_name}")
            frame = frame.f_back
        return chain

    def _call(self, method, path, **kwargs):
        segs = path.split("?")[0].split("/")
        bucket = segs[4] if len(segs) > 4 and segs[1] == "types" else "?"
        kind = "2i" if "/index/" in path else {"GET": "get", "PUT": "put", "POST": "put",
                                               "DELETE": "delete"}.get(method, method)
        line = json.dumps({"role": role, "kind": kind, "bucket": bucket.rsplit("_", 1)[-1],
                           "returnbody": bool((kwargs.get("query") or {}).get("returnbody")),
                           "by": callers()}) + "\n"
        with open(path_out, "a") as fh:
            fh.write(line)
        return original(self, method, path, **kwargs)

    client.RiakClient._call = _call


if _DIR:
    try:
        _install()
    except Exception as exc:  # a diagnosis aid must never stop the process it watches
        print(f"request trace not installed: {exc}", file=sys.stderr)
