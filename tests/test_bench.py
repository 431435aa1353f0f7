"""Keeps the benchmark (scripts/bench/) working; asserts no timing at all.

The machine may be busy with other tests, so nothing here compares a figure
with a limit: a `--quick` run must produce every row, each well-formed, with
a number or an explicit n/a reason; a run against a node given by
`--riak-url` must leave none of its objects behind; the node counters the
Riak figures come from must count what was asked. Huey, Celery and RQ are
installed by `make bench`; without them (or, for Celery and RQ, without
`redis-server` on PATH, as in CI) their rows are n/a with how to get them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.bench import drain, huey_tools, redis_tools
from scripts.bench.__main__ import FIGURES
from scripts.bench.context import Context
from scripts.bench.report import checks
from scripts.bench.results import (CELERY, HUEY, REDIS_PEERS, RIAK, RIAK_PB, RQ, SQLITE, SYSTEMS, Figure, Results,
                                   required, row_key)
from scripts.bench.riak_http import RiakHTTP, counters_delta

from tests.conftest import server_url

ROOT = Path(__file__).resolve().parent.parent
FIGURES_BY_NAME = {f.workload: f for f in FIGURES}

pytestmark = [pytest.mark.xdist_group("bench")]


def run_bench(tmp_path, *args, module=False):
    out = tmp_path / "bench.json"
    entry = ["-m", "scripts.bench"] if module else [str(ROOT / "scripts" / "bench")]
    proc = subprocess.run([sys.executable, *entry, "--quick", "--out", str(out), *args],
                          cwd=ROOT if module else tmp_path, capture_output=True, text=True, timeout=290)
    assert proc.returncode == 0, f"bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = json.loads(out.read_text())
    by_key = {}
    for row in rows:
        assert set(row) >= {"workload", "system", "value", "unit", "params"}, row
        assert row["system"] in SYSTEMS and isinstance(row["params"], dict), row
        assert row["unit"] == FIGURES_BY_NAME[row["workload"]].unit, row
        key = row_key(row, FIGURES_BY_NAME)
        assert key not in by_key, f"two rows for {key}"
        by_key[key] = row
        if row["value"] is None:
            assert row.get("reason"), f"{key}: n/a without a reason"
        else:
            assert isinstance(row["value"], (int, float)) and row["value"] >= 0, row
    return proc, by_key


@pytest.mark.timeout(300)
def test_quick_bench_writes_every_row(tmp_path):
    proc, by_key = run_bench(tmp_path)
    missing = [k for k in required(FIGURES) if k not in by_key]
    assert not missing, f"rows missing: {missing}"

    # The figures the issues ask for on the embedded store are measured.
    for workload, variant in [("enqueue", None), ("drain", None), ("drain-defaults", None),
                              ("latency-p50", None), ("latency-p99", None), ("iteration-1k", None),
                              ("iteration-10k", None), ("iteration-instances", 10), ("idle-cpu", "worker"),
                              ("idle-cpu", "scheduler"), ("startup-open", None), ("startup-floor", None)]:
        row = by_key[(workload, variant, SQLITE)]
        assert row["value"] is not None, row
        assert row["params"], row
    assert by_key[("drain-defaults", None, SQLITE)]["params"]["flags"] == "none"
    for key in [("drain", None, HUEY), ("drain", None, RIAK), ("requests-per-task", "total", RIAK),
                ("raw-put", 16, RIAK)]:
        if by_key[key]["value"] is None:
            print(f"{key} is n/a: {by_key[key]['reason']}")  # e.g. huey not installed

    # Celery and RQ on Redis: measured where redis-server and the packages are there (this
    # process and the bench see the same PATH and packages), else n/a saying how to get them.
    for system, reason in redis_tools.missing().items():
        for workload in ("drain", "drain-defaults", "drain-cpu", "latency-p50", "latency-p95", "latency-p99"):
            row = by_key[(workload, None, system)]
            if reason:
                assert row["value"] is None and row["reason"] == reason, row
            else:
                assert row["value"] is not None, row
                assert row["params"]["workers"] == 4, row
        assert by_key[("iteration-1k", None, system)]["reason"].startswith("not measured for the Redis peers")
        assert by_key[("idle-cpu", "worker", system)]["reason"].startswith("not measured for the Redis peers")

    # The summary: every system a column, each figure with its parameters, the goals.
    for system in SYSTEMS:
        assert system in proc.stdout
    assert "each figure with its parameters:" in proc.stdout
    assert "drain-defaults / riaktq-sqlite:" in proc.stdout and "flags=none" in proc.stdout
    assert "check" in proc.stdout and "sqlite/huey" in proc.stdout and "sqlite/celery" in proc.stdout


@pytest.fixture
def riak_http_url(riak_server):
    """The node's HTTP address: the bench counts and cleans up over HTTP."""
    from tests.conftest import REAL_RIAK
    if REAL_RIAK and not REAL_RIAK.startswith("http"):
        pytest.skip("the bench needs the node's HTTP address (RIAKTQ_TEST_RIAK_URL is PB)")
    return REAL_RIAK or riak_server.url


@pytest.mark.timeout(300)
def test_riak_url_run_uses_the_node_and_leaves_nothing_behind(tmp_path, riak_http_url, riak_server):
    riak_url = riak_http_url
    pb = ["--riak-pb", server_url(riak_server, "pb")] if riak_server is not None else []
    proc, by_key = run_bench(tmp_path, "--only", "raw,requests,drain", "--riak-url", riak_url, *pb,
                             module=True)
    assert f"Riak node {riak_url}" in proc.stdout
    for key in [("raw-put", 1, RIAK), ("raw-put", 16, RIAK), ("raw-get", 1, RIAK), ("raw-get", 16, RIAK),
                ("requests-per-task", "get", RIAK), ("requests-per-task", "put", RIAK),
                ("requests-per-task", "2i", RIAK), ("requests-per-task", "total", RIAK),
                ("drain", None, RIAK), ("drain-vs-raw-put", None, RIAK),
                ("drain", None, SQLITE), ("drain-defaults", None, SQLITE)]:
        assert by_key[key]["value"] is not None, by_key[key]
    if pb:  # the same Riak rows over PB, in the same run, on the same node
        for key in [("raw-put", 16, RIAK_PB), ("raw-get", 1, RIAK_PB), ("drain", None, RIAK_PB),
                    ("drain-cpu", None, RIAK_PB), ("requests-per-task", "total", RIAK_PB)]:
            assert by_key[key]["value"] is not None, by_key[key]
        assert by_key[("drain-pbs", None, RIAK_PB)]["value"] is None  # test server only
    kinds = {k: by_key[("requests-per-task", k, RIAK)]["value"] for k in ("get", "put", "2i", "total")}
    assert kinds["total"] == pytest.approx(kinds["get"] + kinds["put"] + kinds["2i"], abs=0.01)
    assert "clean-up of rtqbench" in proc.stderr
    if riak_server is not None:  # the test server can show what is left; a real node cannot without listing
        with riak_server.store.lock:
            ours = [(t, b) for (t, b) in riak_server.store.buckets if b.startswith("rtqbench")]
        assert ours, "the run wrote no bucket of its own prefix"
        left = {b: riak_server.object_count(t, b) for t, b in ours}
        assert not any(left.values()), f"objects left behind: {left}"


def test_node_counters_count_requests_by_kind(riak_http_url, riak_server):
    """/stats totals under Riak's names: a GET, a PUT, a 2i query; a DELETE
    is a tombstone PUT and a reaping GET, as on a real node."""
    http = RiakHTTP(riak_http_url)
    bucket = "rtqbench-counters"
    try:
        before = http.counters()
        http.put("riaktq", bucket, "k1", b"{}", {"a_bin": "x", "b_bin": "y"})
        http.get("riaktq", bucket, "k1")
        http.request("GET", f"/types/riaktq/buckets/{bucket}/index/a_bin/x")
        http.delete("riaktq", bucket, "k1")
        delta = counters_delta(before, http.counters())
    finally:
        http.close()
    if riak_server is not None:
        assert delta == {"get": 2, "put": 2, "2i": 1, "list": 0}
    else:  # a real node may have other clients (and counts a GET before some writes)
        assert delta["get"] >= 2 and delta["put"] >= 2 and delta["2i"] >= 1


def test_bad_riak_url_is_one_line_and_exit_3(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts.bench", "--quick", "--riak-url", "http://127.0.0.1:9",
                           "--out", str(tmp_path / "x.json")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_huey_is_reported_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "huey", None)  # import huey -> ImportError
    reason = huey_tools.huey_missing()
    assert reason and "make bench" in reason and "pip install huey" in reason


def test_without_redis_server_the_peers_say_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without redis-server
    reasons = redis_tools.missing()
    assert set(reasons) == {CELERY, RQ} and len(set(reasons.values())) == 1
    reason = reasons[CELERY]
    assert "redis-server is not on PATH" in reason and "apt-get install redis-server" in reason
    assert "make bench" in reason


@pytest.mark.timeout(120)
def test_bench_without_redis_server_on_path_gives_the_peers_the_reason(tmp_path):
    """The same as CI without Redis, on any machine: a PATH without redis-server."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run([sys.executable, "-m", "scripts.bench", "--quick", "--only", "latency", "--rate", "10",
                           "--latency-seconds", "0.3", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [r for r in json.loads(out.read_text()) if r["system"] in REDIS_PEERS]
    assert len(rows) == 2 * 6 and {r["reason"] for r in rows} == {redis_tools.GET_REDIS}
    assert redis_tools.GET_REDIS in proc.stderr


def test_missing_peer_package_is_reported_with_the_install_command(tmp_path, monkeypatch):
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "rq", None)  # import rq -> ImportError; find_spec -> None
    reasons = redis_tools.missing()
    # "rq not installed", or "rq and redis not installed" in a venv without the peers (CI)
    assert reasons[RQ].startswith("rq ") and " not installed: " in reasons[RQ]
    assert "make bench" in reasons[RQ] and "pip install rq" in reasons[RQ]
    assert reasons[CELERY] is None or "make bench" in reasons[CELERY]


def test_peer_rows_carry_the_reason_and_a_failure_becomes_one(tmp_path):
    args = type("Args", (), {"quick": True, "n": None, "n_riak": None, "workers": 4})()
    riak = type("Riak", (), {"unavailable_reason": lambda self: None, "pb_unavailable_reason": lambda self: None})()
    results = Results(FIGURES)
    ctx = Context(args, results, tmp_path, riak, None, {CELERY: "get redis", RQ: None})
    ran = []
    ctx.peer_run(["drain", "latency-p50"], lambda system: ran.append(system) or results.add("drain", system, 1.0))
    assert ran == [RQ]
    for workload in ("drain", "latency-p50"):
        assert results.rows[(workload, None, CELERY)]["reason"] == "get redis"
    assert results.value("drain", RQ) == 1.0 and ("latency-p50", None, RQ) not in results.rows

    def broken(system):
        raise RuntimeError("rq worker exited with 1")
    ctx.peer_run(["latency-p99"], broken)
    assert results.rows[("latency-p99", None, RQ)]["reason"] == "RuntimeError: rq worker exited with 1"
    assert results.rows[("latency-p99", None, CELERY)]["reason"] == "get redis"


def test_only_drain_runs_both_drain_rows():
    names = {f.workload for f in drain.FIGURES}
    assert {"drain", "drain-defaults"} <= names


def test_results_rows_variants_and_missing_reasons():
    figures = [Figure("drain", "tasks/s", "drain"),
               Figure("raw-put", "requests/s", "raw", vary="connections", variants=(1, 16))]
    results = Results(figures)
    results.add("drain", SQLITE, 2150.0, {"tasks": 10})
    results.add("raw-put", RIAK, 900.0, {"requests": 5}, variant=16)
    results.na("drain", HUEY, "huey is not installed")
    results.na("raw-put", SQLITE, "a Riak figure")  # every variant
    results.fill_missing("not measured")
    rows = results.as_list()
    assert {"workload": "drain", "system": SQLITE, "value": 2150.0, "unit": "tasks/s",
            "params": {"tasks": 10}} in rows
    assert {"workload": "raw-put", "system": RIAK, "value": 900.0, "unit": "requests/s",
            "params": {"requests": 5, "connections": 16}} in rows
    assert len(rows) == len(required(figures)) == 3 * len(SYSTEMS)
    assert all(r["value"] is not None or r["reason"] for r in rows)
    assert results.value("raw-put", RIAK, 16) == 900.0 and results.value("raw-put", RIAK, 1) is None
    with pytest.raises(ValueError):
        results.add("raw-put", RIAK, 1.0)  # a variant is needed


def test_goal_checks_are_na_without_figures():
    results = Results(FIGURES)
    results.add("drain-defaults", SQLITE, 100.0)
    table = {c[0]: c for c in checks(results, quick=False)}
    assert table["drain-defaults riaktq-sqlite / huey-sqlite"][3] == "n/a"
    results.add("drain-defaults", HUEY, 50.0)
    table = {c[0]: c for c in checks(results, quick=False)}
    assert table["drain-defaults riaktq-sqlite / huey-sqlite"][1:] == ("2.00×", "≥ 1.5×", "PASS")
