"""Wake-up hints (runtime/hints.py): "look now" datagrams between processes.

What must hold: hints make a queue with slow polling fast; the queue
finishes every task exactly once when hints are all dropped, duplicated,
delayed or forged (the store is the only truth); a flood of hints costs a
process little (coalescing, the tag, the scheduler's budget); the
addresses travel in the records and a bad one is one clear line.
"""

import collections
import json
import os
import random
import socket
import threading
import time

import pytest

from riaktq_cli.api.queue import Queue
from riaktq_cli.config import loading as config
from riaktq_cli.config.settings import declared
from riaktq_cli.core.errors import ConfigError
from riaktq_cli.core.records import Inbox, Instance, SchedulerSettings
from riaktq_cli.runtime import hints
from riaktq_cli.runtime.signals import StopFlag
from riaktq_cli.scheduler.events import EventSink
from riaktq_cli.scheduler.iteration import Scheduler
from riaktq_cli.scheduler.process import HINT_BURST, HINT_DUTY, HintBudget
from riaktq_cli.store import published
from riaktq_cli.worker import Worker, supervisor
from riaktq_cli.worker.handler import HandlerSpec
from tests.conftest import wait_until, write_config

TAG = hints.tag_of("test:queue")


def received(listener_hints):
    """Start `listener_hints` listening; the times of its on_hint calls."""
    calls = []
    listener_hints.listen(lambda: calls.append(time.monotonic()))
    return calls


# --- the datagram and its listener ----------------------------------------------------------

def test_a_hint_with_our_tag_wakes_the_listener_and_a_stranger_is_only_counted():
    receiver, sender = hints.Hints(TAG, "127.0.0.1"), hints.Hints(TAG)
    stranger = hints.Hints(hints.tag_of("another queue on this host"))
    try:
        calls = received(receiver)
        assert receiver.address.startswith("127.0.0.1:")
        assert stranger.send(receiver.address)
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.sendto(b"\xff" * 40, hints.split_address(receiver.address))
        raw.close()
        wait_until(lambda: receiver.ignored >= 2, timeout=5, message="both strangers counted")
        assert calls == []
        assert sender.send(receiver.address)
        wait_until(lambda: calls, timeout=5, message="the hint")
        assert receiver.received == 1
    finally:
        for h in (receiver, sender, stranger):
            h.close()
    assert not receiver._thread.is_alive(), "close() ends the listener thread"


def test_a_flood_of_hints_is_coalesced_to_one_per_gap():
    receiver, sender = hints.Hints(TAG, "127.0.0.1"), hints.Hints(TAG)
    try:
        calls = received(receiver)
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 1.0:
            sent += sender.send(receiver.address)
        took = time.monotonic() - started
        time.sleep(0.1)
        assert sent > 2000, "the flood was a flood"
        # one report per GAP at most (and the blocking read after each sleep)
        assert len(calls) <= took / hints.GAP + 5, (len(calls), sent)
        assert len(calls) >= 1
    finally:
        receiver.close()
        sender.close()


def test_sending_to_nowhere_or_to_a_malformed_address_is_a_lost_hint_not_an_error():
    sender = hints.Hints(TAG)
    try:
        for address in (None, "", "nonsense", "host:notaport", "10.0.0.1:99999", 42):
            assert sender.send(address) is False
        assert hints.Hints(None).send("127.0.0.1:9") is False, "no tag: hints are off"
    finally:
        sender.close()


def test_a_port_in_use_turns_hints_off_with_one_line_and_polling_carries_on(caplog):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    h = hints.Hints(TAG, f"127.0.0.1:{port}")
    try:
        assert h.listen(lambda: None) is None
        assert not h.listening
        assert [r.getMessage() for r in caplog.records] == [
            f"wake-up hints off: cannot listen on 127.0.0.1:{port}: Address already in use; polling only"]
    finally:
        h.close()
        taken.close()


def test_auto_listens_on_riak_and_not_on_the_embedded_store(tmp_path):
    sqlite_cfg = config.load(str(write_config(tmp_path / "a.toml", "sqlite")))
    riak_cfg = config.load(str(write_config(tmp_path / "b.toml", "riak", "http://127.0.0.1:8098")))
    assert hints.for_config(sqlite_cfg, "auto").listen(lambda: None) is None
    h = hints.for_config(riak_cfg, "auto")
    try:
        assert h.listen(lambda: None).startswith("127.0.0.1:"), "the address that reaches the node"
    finally:
        h.close()
    assert hints.for_config(sqlite_cfg, "127.0.0.1").listen_setting == "127.0.0.1", "explicit wins"
    # the tag names the queue, not the node list: every machine of one queue agrees
    other_nodes = config.load(str(write_config(tmp_path / "c.toml", "riak", "http://10.9.9.9:8098")))
    assert riak_cfg.queue_identity() != other_nodes.queue_identity()   # write_config draws a new prefix
    assert riak_cfg.queue_identity().startswith("riak:riaktq/t")


# --- settings and records ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["auto", "off", "0.0.0.0", "10.0.0.1:7400", "[::1]:7400", "[::1]", "myhost:0"])
def test_hint_listen_takes_auto_off_a_host_or_host_and_port(value):
    assert declared("worker", "hint_listen").parse(value) == value


@pytest.mark.parametrize("value", ["", "a b", "host:70000", "host:-1", "user@host:1", 7400])
def test_a_bad_hint_listen_is_one_line(value):
    with pytest.raises(ConfigError, match=r"bad \[scheduler\] hint_listen .*expected auto, off, HOST or HOST:PORT"):
        declared("scheduler", "hint_listen").parse(value)


def test_count_with_a_fixed_port_gives_each_instance_its_own():
    assert supervisor.hint_addresses("10.0.0.1:7400", 3) == [
        ["--hint-listen", "10.0.0.1:7400"], ["--hint-listen", "10.0.0.1:7401"], ["--hint-listen", "10.0.0.1:7402"]]
    assert supervisor.hint_addresses("[::1]:7400", 2)[1] == ["--hint-listen", "[::1]:7401"]
    assert supervisor.hint_addresses("auto", 2) == [[], []]
    assert supervisor.hint_addresses("10.0.0.1", 2) == [[], []]
    with pytest.raises(ConfigError, match="4 instances need ports 65534-65537"):
        supervisor.hint_addresses("10.0.0.1:65534", 4)


def test_the_addresses_travel_in_the_records_and_garbage_reads_as_none():
    assert Instance.from_dict(Instance("w", hint="10.0.0.1:7400").to_dict()).hint == "10.0.0.1:7400"
    assert Inbox.from_dict(Inbox(hint="10.0.0.2:1").to_dict()).hint == "10.0.0.2:1"
    assert SchedulerSettings.from_dict(SchedulerSettings("s", 30.0, 1.0, "auto", 0, "h:1").to_dict()).hint == "h:1"
    for garbage in (7, ["x"], "", "x" * 301):
        assert Instance.from_dict({"name": "w", "hint": garbage}).hint is None
        assert Inbox.from_dict({"hint": garbage}).hint is None
    assert "hint" not in Instance("w").to_dict(), "no address, no key: old readers see the record they know"


# --- the scheduler's budget ---------------------------------------------------------------------

def test_hinted_iterations_spend_a_budget_of_cpu_time(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("riaktq_cli.scheduler.process.time.monotonic", lambda: clock[0])
    budget = HintBudget()
    assert budget.due(100.0, last_end=99.0) == 100.0, "a quiet scheduler answers a hint at once"
    assert budget.due(100.0, last_end=100.0) == 100.0 + hints.GAP, "never sooner than GAP after the last"
    budget.spend(100.0, HINT_BURST + 0.5)       # a flood made it spend the burst and half a second more
    assert budget.due(100.0, last_end=0.0) == pytest.approx(100.0 + 0.5 / HINT_DUTY)
    # over a long flood, hinted iterations take HINT_DUTY of the time at most
    now, spent = 200.0, 0.0
    budget = HintBudget()
    clock[0] = now
    while now < 260.0:
        now = budget.due(now, last_end=now - 1.0)
        budget.spend(now, 0.05)
        spent += 0.05
    assert spent / 60.0 <= HINT_DUTY + HINT_BURST / 60.0 + 0.01


# --- the whole queue with faulty hints --------------------------------------------------------

class FaultyHints(hints.Hints):
    """Real listening; sending as `fault` says: drop every hint, send each
    three times, or send it late (0-300 ms)."""

    def __init__(self, tag, listen, fault):
        super().__init__(tag, listen)
        self.fault = fault

    def send(self, address):
        if self.fault == "drop":
            return False
        if self.fault == "duplicate":
            return all([super(FaultyHints, self).send(address) for _ in range(3)])
        if self.fault == "delay":
            timer = threading.Timer(random.uniform(0.0, 0.3), super(FaultyHints, self).send, (address,))
            timer.daemon = True
            timer.start()
            return True
        return super().send(address)


def _forger(addresses, tag, stop):
    """Floods every address it learns with valid hints and junk until `stop`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good, junk = hints.MAGIC + tag, b"riaktq-hint1:" + b"\x00" * 8
    try:
        while not stop.is_set():
            for address in list(addresses):
                target = hints.split_address(address)
                for datagram in (good, junk, b""):
                    try:
                        sock.sendto(datagram, target)
                    except OSError:
                        pass
            time.sleep(0.0005)
    finally:
        sock.close()


@pytest.mark.parametrize("fault", ["drop", "duplicate", "delay", "forge"])
def test_the_queue_finishes_every_task_exactly_once_whatever_happens_to_hints(store, config_file, fault, tmp_path):
    cfg = config.load(str(config_file))
    tag = hints.tag_of(cfg.queue_identity())
    events = tmp_path / "events.jsonl"
    # polling at its slow default would take minutes here: 1 s keeps the
    # safety net in the test's time when every hint is dropped
    scheduler = Scheduler(store, instance_timeout=10.0, prefetch="auto", events=EventSink(str(events)),
                          hints=FaultyHints(tag, "127.0.0.1", fault))
    workers = [Worker(store, f"w{i}", HandlerSpec("echo"), heartbeat=0.5, poll=1.0, instance_timeout=10.0,
                      hints=FaultyHints(tag, "127.0.0.1", fault)) for i in range(2)]
    stop_scheduler, stop_workers, stop_forger = StopFlag(), threading.Event(), threading.Event()
    threads = [threading.Thread(target=scheduler.run, args=(1.0, stop_scheduler), daemon=True)]
    threads += [threading.Thread(target=w.run, args=(stop_workers,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    addresses = []
    forger = threading.Thread(target=_forger, args=(addresses, tag, stop_forger), daemon=True)
    queue = Queue(store, cfg)
    try:
        wait_until(lambda: scheduler.hints.listening and all(w.hints.listening for w in workers), timeout=30,
                   message="everyone listening")
        if fault == "forge":
            addresses += [scheduler.hints.address] + [w.hints.address for w in workers]
            forger.start()
        queue._hints = FaultyHints(tag, "off", fault)   # the application's hints fail the same way
        for i in range(30):
            queue.open(f"t{i}", f"in {i}".encode())
        wait_until(lambda: store.count_by_status()["done"] == 30, timeout=90, interval=0.1, message="30 done")
        if fault == "forge":
            assert scheduler.hints.received > 0 and scheduler.hints.ignored > 0, "the forger reached it"
    finally:
        stop_forger.set()
        stop_workers.set()
        for t in threads[1:]:
            t.join(30)
        stop_scheduler.set()
        threads[0].join(30)
        queue._hints.close()
    tasks = store.get_tasks([f"t{i}" for i in range(30)])
    assert [(tasks[f"t{i}"].status, tasks[f"t{i}"].out, tasks[f"t{i}"].run) for i in range(30)] == [("done", f"in {i}".encode(), 1) for i in range(30)]
    closes = collections.Counter(json.loads(line)["id"] for line in events.read_text().splitlines()
                                 if json.loads(line)["transition"] == "close")
    assert set(closes) == {f"t{i}" for i in range(30)} and set(closes.values()) == {1}


# --- real processes ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["riak"], indirect=True)
def test_hints_carry_a_task_through_a_queue_that_polls_once_a_minute(store, procs):
    """Scheduler interval and worker poll at 60 s: without hints the task
    could not finish in under a minute (open -> scheduler, inbox -> worker,
    result -> scheduler each wait for a poll)."""
    sched = procs.start("scheduler", "--interval", "60s", name="scheduler")
    procs.start("worker", "--name", "w1", "--handler", "echo", "--poll", "60s", "--heartbeat", "1s", name="worker")
    wait_until(lambda: (published.read(store) or SchedulerSettings("", 0, 0, 0, 0)).hint, timeout=30,
               message="the scheduler publishes its hint address")
    record = wait_until(lambda: store.get_record("instance", "w1"), timeout=30, message="worker up")
    assert Instance.from_dict(record).hint, "the worker publishes its hint address"
    time.sleep(0.5)   # the scheduler's first iterations (taking the lease) are behind it
    started = time.monotonic()
    result = procs.run("open", "t1", "--in", "hello")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: store.count_by_status()["done"] == 1, timeout=30, interval=0.05, message="t1 done")
    assert time.monotonic() - started < 30
    assert store.get_task("t1").out == b"hello"
    assert "taking wake-up hints at" in open(sched.log_path).read()


@pytest.mark.parametrize("backend", ["riak"], indirect=True)
def test_count_with_a_port_gives_each_instance_the_next_port(store, procs):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    procs.start("worker", "--count", "2", "--prefix", "p", "--handler", "echo", "--hint-listen",
                f"127.0.0.1:{port}", name="workers")
    wait_until(lambda: len(store.list_records("instance")) == 2, timeout=30, message="2 workers")
    addresses = {n: Instance.from_dict(r).hint for n, r in store.list_records("instance").items()}
    assert addresses == {"p-1": f"127.0.0.1:{port}", "p-2": f"127.0.0.1:{port + 1}"}


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_flood_of_hints_costs_an_idle_worker_little_cpu(store, procs, config_file):
    """Valid hints as fast as one process can send them, for 3 s: the
    worker looks at most once per GAP (an inbox read each), so its CPU stays
    well under a core; without coalescing it reads its inbox per datagram."""
    worker = procs.start("worker", "--name", "w1", "--handler", "echo", "--hint-listen", "127.0.0.1", name="w")
    record = wait_until(lambda: store.get_record("instance", "w1"), timeout=30, message="worker up")
    target = hints.split_address(Instance.from_dict(record).hint)
    datagram = hints.MAGIC + hints.tag_of(config.load(str(config_file)).queue_identity())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    time.sleep(1.0)   # past its start-up work
    before, started, sent = _cpu_seconds(worker.pid), time.monotonic(), 0
    while time.monotonic() - started < 3.0:
        try:
            sock.sendto(datagram, target)
            sent += 1
        except OSError:
            pass
    used = (_cpu_seconds(worker.pid) - before) / (time.monotonic() - started)
    sock.close()
    assert sent > 10_000, "the flood was a flood"
    assert used < 0.5, f"the worker used {used:.0%} of a core under {sent} hints"
    assert worker.poll() is None
