"""The scheduler lease on a slow store (issue 18, defect 11): with every
request taking 300 ms (a Riak node checking a password per HTTPS request)
and instance_timeout = 3s, the lease's own requests do not fit its term.
The scheduler must say so in one line, with the timeout that would fit --
not stand by for ever for a holder "?" that does not exist."""

from pathlib import Path

from tests.conftest import Processes, wait_until, write_config

LATENCY = 0.3


def times(fetch, write, read):
    from riaktq_cli.lease import RequestTimes
    measured = RequestTimes()
    for kind, seconds in (("fetch", fetch), ("write", write), ("read", read)):
        measured.note(kind, seconds)
    return measured


def test_the_shortest_timeout_covers_a_takeover_and_a_renewal():
    from riaktq_cli.lease import covers, shortest_timeout
    slow = times(LATENCY, LATENCY, LATENCY)
    assert not covers(1.5, slow, settles=True)           # instance_timeout 3s: term 1.5 s
    assert shortest_timeout(slow, settles=True) == 8      # with headroom for slower answers
    assert covers(4.0, slow, settles=True)
    fast = times(0.002, 0.002, 0.002)
    assert covers(0.05, fast, settles=False) and shortest_timeout(fast, settles=False) == 1


def test_a_scheduler_on_a_slow_store_says_its_timeout_is_too_short(tmp_path, fault_server, riak_url):
    config = write_config(tmp_path / "riaktq.toml", "riak", riak_url,
                          scheduler={"interval": "100ms", "instance_timeout": "3s"})
    procs = Processes(tmp_path, config)
    try:
        assert procs.run("open", "t1", "--in", "0").returncode == 0
        fault_server.slow_next(10 ** 6, LATENCY)          # every request from now on: 300 ms
        scheduler = procs.start("scheduler", name="scheduler")
        log = Path(scheduler.log_path)
        wait_until(lambda: "too short" in log.read_text(), timeout=60, message="the shortfall line")
        [line] = [ln for ln in log.read_text().splitlines() if "too short" in ln]
        assert "instance_timeout 3s is too short for this store: lease requests take" in line
        assert "use at least" in line
        # it measures its requests (at least 300 ms each: three of them)
        taken = float(line.split("lease requests take ")[1].split(" s;")[0])
        assert taken >= 3 * LATENCY - 0.05
        suggested = int(line.split("use at least ")[1].split("s")[0])
        assert suggested >= 8
        assert "standing by: scheduler lease held by ?" not in log.read_text()
    finally:
        procs.cleanup()
        fault_server.clear_faults()
