"""While the store refuses writes (a full disk), the scheduler's lease is
not confirmed and it writes nothing: it says so once per outage, and once
when the lease is confirmed again -- not five times a second (issue 18,
defect 12). Riak test server: its fault switches refuse the writes."""

from pathlib import Path

from tests.conftest import FAST, Processes, wait_until, write_config

REFUSED = "status_500"


def test_a_lapsed_lease_is_said_once_per_outage(tmp_path, fault_server, riak_url):
    # a lease of 2 s: no lapse of its own on a busy machine before the disk fills
    config = write_config(tmp_path / "riaktq.toml", "riak", riak_url,
                          scheduler={"interval": "100ms", "instance_timeout": "4s"}, worker=FAST["worker"])
    procs = Processes(tmp_path, config)
    try:
        scheduler = procs.start("scheduler", name="scheduler")
        log = Path(scheduler.log_path)
        wait_until(lambda: "holds the lease" in log.read_text(), timeout=60, message="the lease")
        # a task due in a moment: the scheduler will want to write (release it)
        assert procs.run("open", "later", "--in", "x", "--delay", "1s").returncode == 0
        before = fault_server.counts[REFUSED]
        fault_server.fail_next(10 ** 6, 500, "Error:\n{error,enospc}\n", kinds="put")   # disk full
        wait_until(lambda: "not confirmed" in log.read_text(), timeout=60, message="the lapse")
        # the renewals go on being refused, a few each second, while iterations are tried
        wait_until(lambda: fault_server.counts[REFUSED] >= before + 10, timeout=60, message="refused renewals")
        assert log.read_text().count("not confirmed") == 1, log.read_text()
        fault_server.clear_faults()
        wait_until(lambda: "confirmed again" in log.read_text(), timeout=60, message="the recovery")
        text = log.read_text()
        assert text.count("not confirmed") == 1, text
        assert text.count("lease confirmed again after") == 1, text
    finally:
        procs.cleanup()
        fault_server.clear_faults()
