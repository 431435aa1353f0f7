"""riaktq against Riak with security on: HTTPS, a user and its grants.

The node is the Riak test server with security enabled the way the 09/09b
transcripts show a real secure node: HTTPS (TLS 1.2, a CA made here with
trustme), user `riaktq` with every grant, `reader` with only riak_kv.get and
riak_kv.index, and a plain-HTTP listener of the same node that answers 426.

What is proven: the lifecycle works over HTTPS with auth and survives
kill -9; each refusal (wrong password, missing grant, plain HTTP, unknown CA)
reaches the user as the one documented line with its exit code, from one-shot
commands and from the daemons' logs; a password that expires mid-run loses
nothing and work resumes once it is fixed; and the password never appears in
any output, log, event or trace.
"""

import base64
import collections
import json
import os
import signal
import types
import uuid

import pytest

from riaktq_cli import config
from riaktq_cli.store import open_store
from tests.conftest import (FAST, READER, READER_PASSWORD, TEST_PASSWORD, TEST_USER, Processes,
                            read_events, secure_test_server, security_lines, wait_until)
from riaktq_testing.riak_sim import RiakTestServer


@pytest.fixture
def secure(tmp_path):
    """A secure node (`.url`, https) and its plain listener (`.plain_url`)."""
    (tmp_path / "tls").mkdir()
    server = secure_test_server(tmp_path / "tls")
    plain = RiakTestServer(port=0, share_with=server, security=server.security)
    yield types.SimpleNamespace(server=server, plain=plain, url=server.url, plain_url=plain.url,
                                ca=server.ca_file, security=server.security)
    plain.stop()
    server.stop()


@pytest.fixture
def run(secure, tmp_path):
    """User riaktq on the secure node: its config, a store, and processes."""
    cfg = secure_config(tmp_path / "riaktq.toml", secure.url, ca=secure.ca)
    store = open_store(config.load(str(cfg)))
    procs = Processes(tmp_path, cfg)
    yield types.SimpleNamespace(cfg=cfg, store=store, procs=procs)
    procs.cleanup()
    store.close()


def secure_config(path, url, *, user=TEST_USER, password=TEST_PASSWORD, ca=None, extra="",
                  prefix=None):
    """A config for `url` with this user; the password in a 0600 file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    riak = (f'[riak]\nnodes = ["{url}"]\nprefix = "{prefix or "t" + uuid.uuid4().hex[:12]}"\n'
            f'timeout = "2s"\n' + security_lines(path.parent, user, password, ca) + extra)
    sections = "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                       for name, values in FAST.items())
    path.write_text('[store]\nbackend = "riak"\n' + riak + sections)
    return path


def one_line(result):
    err = result.stderr.decode()
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def log_text(proc):
    with open(proc.log_path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def closes(events):
    """Runs closed per task (events are at least once: a repeated close of
    one run counts once)."""
    return collections.Counter(task_id for task_id, _ in
                               {(e["id"], e["run"]) for e in events if e["transition"] == "close"})


def open_batch(procs, tmp_path, ids, payload="0.02"):
    batch = tmp_path / f"batch-{uuid.uuid4().hex[:6]}.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "in": payload}) + "\n" for i in ids))
    result = procs.run("open", "--batch", str(batch))
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------
# It works


def test_lifecycle_over_https_with_auth_survives_kill_9(secure, run, tmp_path):
    lifecycle_survives_kill_9(run.store, run.procs, tmp_path)
    assert secure.server.counts["status_401"] == 0 and secure.server.counts["status_403"] == 0


def test_lifecycle_over_pbs_with_auth_survives_kill_9(secure, tmp_path):
    """The same over Riak's PB API with TLS and a user: each connection authenticates once."""
    from tests.conftest import server_url
    cfg = secure_config(tmp_path / "riaktq.toml", server_url(secure.server, "pb"), ca=secure.ca)
    store = open_store(config.load(str(cfg)))
    procs = Processes(tmp_path, cfg)
    try:
        lifecycle_survives_kill_9(store, procs, tmp_path)
    finally:
        procs.cleanup()
        store.close()
    counts = secure.server.counts
    assert counts["auth_failed"] == 0 and counts["status_401"] == 0 and counts["pb_connections"] > 0


def lifecycle_survives_kill_9(store, procs, tmp_path):
    ids = [f"s{i}" for i in range(100)]
    open_batch(procs, tmp_path, ids, payload="0.03")
    events = [tmp_path / "ev0.jsonl"]
    scheduler = procs.start("scheduler", "--interval", "100ms", "--prefetch", "2", "--events",
                            str(events[0]), name="sched")
    procs.start("worker", "--handler", "sleep", "--count", "2", "--prefix", "sec", name="workers")
    wait_until(lambda: len(store.list_records("instance")) == 2, message="two workers")
    wait_until(lambda: store.count_by_status()["done"] >= 10, timeout=60, message="some done")
    victim = sorted(store.list_records("instance").values(), key=lambda r: r["name"])[0]
    os.kill(victim["pid"], signal.SIGKILL)
    os.kill(scheduler.pid, signal.SIGKILL)
    scheduler.wait()
    events.append(tmp_path / "ev1.jsonl")
    procs.start("scheduler", "--interval", "100ms", "--prefetch", "2", "--events", str(events[1]),
                name="sched")
    wait_until(lambda: store.count_by_status()["done"] == len(ids), timeout=120, interval=0.3,
               message="all done after kill -9")
    tasks = store.get_tasks(ids)
    assert len(tasks) == len(ids) and all(t.status == "done" and t.out == b"0.03" for t in tasks.values())
    # Every task closed by exactly one run, and every close has an event
    # (a scheduler that takes over emits the closes it may have missed).
    per_task = closes([e for path in events for e in read_events(path)])
    assert set(per_task.values()) == {1} and set(per_task) == set(ids)


def test_check_reports_tls_user_and_grants(secure, tmp_path):
    cfg = secure_config(tmp_path / "riaktq.toml", secure.url, ca=secure.ca)
    result = Processes(tmp_path, cfg).run("check")
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert f"✓ node {secure.url}: TLSv1.2, certificate verified (O=trustme" in out
    assert "expires Jan  1 00:00:00 3000 GMT" in out
    assert f"✓ node {secure.url}: authenticated as user 'riaktq'" in out
    assert ("user 'riaktq' has riak_kv.put, riak_kv.get, riak_kv.index, riak_kv.delete, "
            "riak_core.get_bucket, riak_core.get_bucket_type on bucket type riaktq") in out
    # the probe key did not stay behind
    assert secure.server.object_count("riaktq", f"{config.load(str(cfg)).get('riak', 'prefix')}_check") == 0


def test_check_prints_the_grant_for_each_missing_permission(secure, tmp_path):
    cfg = secure_config(tmp_path / "riaktq.toml", secure.url, user=READER, password=READER_PASSWORD,
                        ca=secure.ca)
    result = Processes(tmp_path, cfg).run("check")
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert f"✓ node {secure.url}: authenticated as user 'reader'" in out
    for perm in ("riak_kv.put", "riak_kv.delete", "riak_core.get_bucket", "riak_core.get_bucket_type"):
        assert (f"✗ node {secure.url}: user 'reader' lacks {perm} on bucket type riaktq; grant it "
                f"with: riak admin security grant {perm} on riaktq to reader") in out
    for perm in ("riak_kv.get", "riak_kv.index"):
        assert f"lacks {perm} " not in out
    assert ("riak admin security grant riak_kv.put,riak_kv.delete,riak_core.get_bucket,"
            "riak_core.get_bucket_type on riaktq to reader") in out
    # the operator runs the command: check passes
    secure.security.grant(READER, ["riak_kv.put", "riak_kv.delete", "riak_core.get_bucket",
                                   "riak_core.get_bucket_type"], on="riaktq")
    result = Processes(tmp_path, cfg).run("check")
    assert result.returncode == 0, result.stdout.decode()


# --------------------------------------------------------------------------
# Each refusal: one line, its exit code, everywhere


REFUSALS = {
    "wrong password": dict(node="url", password="not-the-password",
                           line="riak: authentication failed for user 'riaktq' at {url}"),
    "read-only user": dict(node="url", user=READER, password=READER_PASSWORD,
                           line="riak: permission denied: user 'reader' lacks riak_kv.put on bucket type riaktq"),
    "plain HTTP": dict(node="plain_url",
                       line="riak: this node requires HTTPS (security is enabled): {plain_url}"),
    "unknown CA": dict(node="url", ca=None,
                       line="riak: certificate of {url} not trusted (set ca_file)"),
}


# where each refusal is counted: (server, counter)
REFUSAL_ANSWERS = {"wrong password": ("server", "status_401"), "read-only user": ("server", "status_403"),
                   "plain HTTP": ("plain", "status_426"), "unknown CA": ("server", "tls_failed")}


def refusal_config(secure, tmp_path, case):
    spec = REFUSALS[case]
    cfg = secure_config(tmp_path / "riaktq.toml", getattr(secure, spec["node"]),
                        user=spec.get("user", TEST_USER), password=spec.get("password", TEST_PASSWORD),
                        ca=spec.get("ca", secure.ca))
    return cfg, spec["line"].format(url=secure.url, plain_url=secure.plain_url)


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_is_one_line_from_open_tasks_and_check(secure, tmp_path, case):
    cfg, line = refusal_config(secure, tmp_path, case)
    procs = Processes(tmp_path, cfg)
    server, answer = REFUSAL_ANSWERS[case]
    getattr(secure, server).reset_counts()
    result = procs.run("open", "a", "--in", "x")
    assert result.returncode == 3 and one_line(result) == f"riaktq: error: {line}"
    # final: one request, neither retried nor sent again elsewhere
    assert getattr(secure, server).counts[answer] == 1
    result = procs.run("tasks")
    if case == "read-only user":  # reading is all it may do, and it can
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 3 and one_line(result) == f"riaktq: error: {line}"
    out = check_fails_on_refusal(procs, case)
    if case != "read-only user":
        node = secure.plain_url if case == "plain HTTP" else secure.url
        assert f"✗ node {node}: {line[len('riak: '):]}" in out


def check_fails_on_refusal(procs, case):
    """`riaktq check` under a refusal: exit 1, no traceback, the grant a reader lacks; its output."""
    result = procs.run("check")
    out = result.stdout.decode()
    assert result.returncode == 1 and "Traceback" not in out + result.stderr.decode()
    if case == "read-only user":
        assert "riak admin security grant riak_kv.put on riaktq to reader" in out
    return out


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_daemons_log_the_refusal_and_keep_running(secure, tmp_path, case):
    cfg, line = refusal_config(secure, tmp_path, case)
    procs = Processes(tmp_path, cfg)
    try:
        scheduler = procs.start("scheduler", "--interval", "100ms", name="sched")
        worker = procs.start("worker", "--handler", "echo", "--name", "w1", name="worker")
        for proc in (scheduler, worker):
            wait_until(lambda: line in log_text(proc), timeout=30, message=f"{case} in the log")
        assert scheduler.poll() is None and worker.poll() is None, "a daemon died of a refusal"
        assert all("Traceback" not in log_text(p) for p in (scheduler, worker))
    finally:
        procs.cleanup()


def test_daemons_do_not_flood_the_log_with_a_refusal(secure, tmp_path):
    cfg, line = refusal_config(secure, tmp_path, "wrong password")
    procs = Processes(tmp_path, cfg)
    try:
        scheduler = procs.start("scheduler", "--interval", "100ms", name="sched")
        worker = procs.start("worker", "--handler", "echo", "--name", "w1", name="worker")
        for proc in (scheduler, worker):
            wait_until(lambda: line in log_text(proc), timeout=30, message="the refusal logged")
        seen = secure.server.counts["status_401"]
        wait_until(lambda: secure.server.counts["status_401"] >= seen + 40, timeout=60,
                   message="many more refused requests")
        for proc in (scheduler, worker):
            assert log_text(proc).count(line) <= 2, log_text(proc)
    finally:
        procs.cleanup()


def test_expired_password_mid_run_loses_nothing_and_work_resumes(secure, run, tmp_path):
    store, procs = run.store, run.procs
    ids = [f"e{i}" for i in range(60)]
    open_batch(procs, tmp_path, ids, payload="0.05")
    events = tmp_path / "events.jsonl"
    scheduler = procs.start("scheduler", "--interval", "100ms", "--events", str(events), name="sched")
    worker = procs.start("worker", "--handler", "sleep", "--count", "2", "--prefix", "x", name="workers")
    done_then = wait_until(lambda: store.count_by_status()["done"] >= 5 and store.count_by_status()["done"],
                           timeout=60, message="some done")
    secure.security.set_password(TEST_USER, "expired-" + uuid.uuid4().hex)  # 401 from now on
    line = f"riak: authentication failed for user 'riaktq' at {secure.url}"
    for proc in (scheduler, worker):
        wait_until(lambda: line in log_text(proc), timeout=30, message="the 401 in the log")
    assert done_then < len(ids), "the run ended before the password expired"
    secure.security.set_password(TEST_USER, TEST_PASSWORD)  # the operator renews it
    wait_until(lambda: store.count_by_status()["done"] == len(ids), timeout=120, interval=0.3,
               message="all done after the password is fixed")
    per_task = closes(read_events(events))
    assert set(per_task) == set(ids) and set(per_task.values()) == {1}
    assert scheduler.poll() is None and worker.poll() is None


# --------------------------------------------------------------------------
# Nothing secret printed


def all_commands(tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({"id": "b1", "in": "x"}) + "\n")
    return [("open", "a", "--in", "x"), ("open", "--batch", str(batch)), ("get", "a"), ("tasks",),
            ("rm", "a"), ("instances",), ("check",), ("report", "--status", "todo"), ("stats",),
            ("requeue", "a"), ("requeue", "--status", "failed")]


DAEMONS = [("scheduler", "--interval", "100ms"), ("worker", "--handler", "echo", "--name", "w1"),
           ("observe", "--interval", "100ms")]


@pytest.mark.parametrize("source", ["password_file", "password", "environment"])
def test_the_password_appears_nowhere(secure, tmp_path, source):
    """Every command with -v against a secure node that refuses the password
    (401) or the user (403): no output, log, event or trace shows it."""
    secret = "pw-" + uuid.uuid4().hex
    secure.security.add_user("leaky", secret, ["riak_kv.get", "riak_kv.index"])
    token = base64.b64encode(f"leaky:{secret}".encode()).decode()
    outputs = []
    for phase in ("403", "401"):
        if phase == "401":
            secure.security.set_password("leaky", "changed-" + uuid.uuid4().hex)
        cfg = secure_config(tmp_path / phase / "riaktq.toml", secure.url, user="leaky",
                            password=secret, ca=secure.ca)
        env = dict(os.environ)
        if source != "password_file":
            text = cfg.read_text().replace(f'password_file = "{cfg.parent / "riak-password"}"\n', "")
            (cfg.parent / "riak-password").unlink()
            if source == "password":
                text = text.replace('username = "leaky"\n', f'username = "leaky"\npassword = "{secret}"\n')
            else:
                env["RIAKTQ_RIAK_PASSWORD"] = secret
            cfg.write_text(text)
        procs = Processes(tmp_path / phase, cfg)
        for args in all_commands(tmp_path / phase):
            result = run_with_env(procs, env, "-v", *args)
            outputs.append(result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace"))
        events = tmp_path / phase / "events.jsonl"
        started = [start_with_env(procs, env, "-v", *args, *(["--events", str(events)]
                                                            if args[0] == "scheduler" else []))
                   for args in DAEMONS]
        refused = "authentication failed" if phase == "401" else "permission denied"
        for proc in started[:2]:
            wait_until(lambda: refused in log_text(proc), timeout=30, message="the refusal logged")
        procs.cleanup()
        outputs.extend(log_text(p) for p in started)
        if events.exists():
            outputs.append(events.read_text())
    everything = "\n".join(outputs)
    assert "authentication failed for user 'leaky'" in everything
    assert "permission denied: user 'leaky'" in everything
    assert secret not in everything and token not in everything


def run_with_env(procs, env, *args):
    import subprocess
    return subprocess.run(procs.argv(*args), capture_output=True, cwd=procs.tmp_path, timeout=60, env=env)


def start_with_env(procs, env, *args):
    import subprocess
    log = open(procs.tmp_path / f"{args[1]}-{len(procs.procs)}.log", "wb")
    proc = subprocess.Popen(procs.argv(*args), stdout=log, stderr=subprocess.STDOUT,
                            cwd=procs.tmp_path, start_new_session=True, env=env)
    proc.log_path = log.name
    procs.procs.append(proc)
    return proc


# --------------------------------------------------------------------------
# Configuration


def test_credentials_in_a_node_url_are_refused_without_showing_them(tmp_path):
    cfg = tmp_path / "riaktq.toml"
    cfg.write_text('[store]\nbackend = "riak"\n[riak]\nnodes = ["https://riaktq:hunter2@riak1:8443"]\n')
    result = Processes(tmp_path, cfg).run("tasks")
    line = one_line(result)
    assert result.returncode == 2 and "hunter2" not in line and "https://riak1:8443" in line
    assert "use username and password_file" in line or "set username and password_file" in line
    result = Processes(tmp_path, tmp_path / "new.toml").run("init", "--riak", "https://u:hunter2@riak1:8443")
    line = one_line(result)
    assert result.returncode == 2 and "hunter2" not in line and "password_file" in line
    assert not (tmp_path / "new.toml").exists()


def test_password_file_readable_by_others_gets_a_warning(secure, tmp_path):
    cfg = secure_config(tmp_path / "riaktq.toml", secure.url, ca=secure.ca)
    procs = Processes(tmp_path, cfg)
    assert procs.run("tasks").stderr.decode() == ""
    (tmp_path / "riak-password").chmod(0o644)
    result = procs.run("tasks")
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "can be read by other users" in err and "chmod 600" in err and TEST_PASSWORD not in err


def test_paths_are_relative_to_the_config_file(secure, tmp_path):
    here = tmp_path / "etc"
    cfg = secure_config(here / "riaktq.toml", secure.url, ca=None)
    (here / "ca.pem").write_bytes(open(secure.ca, "rb").read())
    text = cfg.read_text().replace(f'password_file = "{here / "riak-password"}"', 'password_file = "riak-password"')
    cfg.write_text(text.replace("[scheduler]", 'ca_file = "ca.pem"\n[scheduler]', 1))
    result = Processes(tmp_path, cfg).run("open", "a", "--in", "x")  # cwd is not the config's folder
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("riak_lines, message", [
    ('username = "u"\n', "username 'u' has no password"),
    ('password = "p"\n', "[riak] password is set but [riak] username is not"),
    ('username = "u"\npassword = "p"\npassword_file = "f"\n', "both password and password_file"),
    ('key_file = "k.pem"\n', "key_file needs cert_file"),
    ('verify = "no"\n', "expected true or false"),
    ('username = "u"\npassword_file = "missing"\n', "password_file"),
    ('username = "u"\npassword = "p"\nca_file = "missing.pem"\n', "ca_file"),
])
def test_bad_security_settings_are_one_line_exit_2(tmp_path, riak_lines, message):
    cfg = tmp_path / "riaktq.toml"
    cfg.write_text('[store]\nbackend = "riak"\n[riak]\nnodes = ["https://127.0.0.1:1"]\n' + riak_lines)
    result = Processes(tmp_path, cfg).run("tasks")
    line = one_line(result)
    assert result.returncode == 2 and message in line and '"p"' not in line


def test_password_from_the_environment(secure, tmp_path):
    cfg = secure_config(tmp_path / "riaktq.toml", secure.url, ca=secure.ca)
    cfg.write_text(cfg.read_text().replace(f'password_file = "{tmp_path / "riak-password"}"\n', ""))
    procs = Processes(tmp_path, cfg)
    assert procs.run("tasks").returncode == 2  # a user without a password
    env = dict(os.environ, RIAKTQ_RIAK_PASSWORD=TEST_PASSWORD)
    assert run_with_env(procs, env, "open", "a", "--in", "x").returncode == 0


def test_verify_false_works_and_warns_loudly(secure, tmp_path):
    cfg = secure_config(tmp_path / "riaktq.toml", secure.url, extra="verify = false\n")
    procs = Processes(tmp_path, cfg)
    result = procs.run("open", "a", "--in", "x")
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "verification is OFF" in err and err.count("\n") == 1  # once, not per request
    out = procs.run("check").stdout.decode()
    assert "certificate NOT verified (verify = false)" in out


def test_init_riak_https_writes_the_security_keys_commented(tmp_path):
    target = tmp_path / "riaktq.toml"
    result = Processes(tmp_path, target).run("init", "--riak", "https://riak1.example:8443")
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    for key in ("username", "password_file", "ca_file", "cert_file", "key_file", "verify"):
        assert f"# {key} = " in text
    assert config.load(str(target)).get("riak", "nodes") == ["https://riak1.example:8443"]


# --------------------------------------------------------------------------
# The same over Riak's PB API (pbs://): StartTls, one authentication per connection


PB_REFUSALS = {
    "wrong password": dict(password="not-the-password",
                           line="riak: authentication failed for user 'riaktq' at {pbs}"),
    "read-only user": dict(user=READER, password=READER_PASSWORD,
                           line="riak: permission denied: user 'reader' lacks riak_kv.put on bucket type riaktq"),
    "TLS required": dict(node="pb", line="riak: this node requires TLS (security is enabled): use {pbs} "
                                         "instead of {pb}"),
    "unknown CA": dict(ca=None, line="riak: certificate of {pbs} not trusted (set ca_file)"),
}


@pytest.mark.parametrize("case", sorted(PB_REFUSALS))
def test_pb_refusal_is_one_line_from_open_and_check(secure, tmp_path, case):
    from tests.conftest import server_url
    pbs = server_url(secure.server, "pb")
    pb = pbs.replace("pbs://", "pb://")
    spec = PB_REFUSALS[case]
    cfg = secure_config(tmp_path / "riaktq.toml", pb if spec.get("node") == "pb" else pbs,
                        user=spec.get("user", TEST_USER), password=spec.get("password", TEST_PASSWORD),
                        ca=spec.get("ca", secure.ca))
    line = spec["line"].format(pbs=pbs, pb=pb)
    procs = Processes(tmp_path, cfg)
    result = procs.run("open", "a", "--in", "x")
    assert result.returncode == 3 and one_line(result) == f"riaktq: error: {line}"
    out = check_fails_on_refusal(procs, case)
    if case != "read-only user":
        assert line[len("riak: "):] in out


def test_check_over_pbs_reports_the_api_tls_user_and_grants(secure, tmp_path):
    from tests.conftest import server_url
    pbs = server_url(secure.server, "pb")
    cfg = secure_config(tmp_path / "riaktq.toml", pbs, ca=secure.ca)
    result = Processes(tmp_path, cfg).run("check")
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert f"✓ node {pbs}: transport Protocol Buffers (one authentication per connection)" in out
    assert f"✓ node {pbs}: TLSv1.2, certificate verified (O=trustme" in out
    assert f"✓ node {pbs}: authenticated as user 'riaktq'" in out
    assert "riak_core.get_bucket, riak_core.get_bucket_type on bucket type riaktq" in out
    assert "re-checks the password" not in out  # that warning is for HTTPS
