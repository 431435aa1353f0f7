"""Periodic schedules (issue 21): slots from cron or `every`, opened once
per slot by the lease holder through kill -9 and takeovers, catch_up after
downtime, checks at start, `riaktq schedules`."""

import json
import os
import re
import signal
import time
from datetime import datetime, timezone

import pytest

from riaktq_cli import schedules
from riaktq_cli.errors import ConfigError
from riaktq_cli.scheduler import Scheduler
from tests.conftest import wait_until

MINUTE_US = 60_000_000


def us(*args, tz=timezone.utc):
    return int(datetime(*args, tzinfo=tz).timestamp() * 1_000_000)


def one(**table):
    return schedules.parse([dict({"name": "s"}, **table)])[0]


def add_schedules(config_file, text):
    with open(config_file, "a") as fh:
        fh.write("\n" + text)


# --- slots and ids ------------------------------------------------------------------

def test_slot_ids_name_the_slot_in_utc():
    nightly = one(cron="0 6 * * *")
    assert nightly.task_id(us(2026, 12, 2, 6, 0)) == "s@2026-12-02T06:00Z"
    assert one(every="2s").task_id(us(2026, 12, 2, 6, 0)) == "s@2026-12-02T06:00:00Z"   # sorts among :02, :04
    assert one(cron="*/2 * * * * *").task_id(us(2026, 12, 2, 6, 0, 2)) == "s@2026-12-02T06:00:02Z"
    assert one(every="15m").task_id(us(2026, 12, 2, 6, 15)) == "s@2026-12-02T06:15Z"
    assert nightly.next_after(us(2026, 12, 2, 6, 0)) == us(2026, 12, 3, 6, 0)
    assert nightly.latest_at_or_before(us(2026, 12, 2, 6, 0)) == us(2026, 12, 2, 6, 0)
    assert nightly.latest_at_or_before(us(2026, 12, 2, 5, 59, 59)) == us(2026, 12, 1, 6, 0)


def test_every_counts_from_the_epoch_so_every_process_agrees():
    quarter = one(every="15m")
    assert quarter.next_after(us(2026, 12, 2, 6, 7, 30)) == us(2026, 12, 2, 6, 15)
    assert quarter.latest_at_or_before(us(2026, 12, 2, 6, 15)) == us(2026, 12, 2, 6, 15)
    assert quarter.slots(us(2026, 12, 2, 6, 0), us(2026, 12, 2, 7, 0)) == \
        [us(2026, 12, 2, 6, 15), us(2026, 12, 2, 6, 30), us(2026, 12, 2, 6, 45), us(2026, 12, 2, 7, 0)]


def test_cron_in_a_timezone_follows_debian_cron_across_dst():
    from zoneinfo import ZoneInfo
    paris = ZoneInfo("Europe/Paris")
    at_0230 = one(cron="30 2 * * *", timezone="Europe/Paris")
    # 2026-03-29: 02:00 -> 03:00 in Paris; the 02:30 job runs at 03:00 (as Debian cron does)
    assert at_0230.next_after(us(2026, 3, 28, 12, 0, tz=paris)) == us(2026, 3, 29, 3, 0, tz=paris)
    assert at_0230.next_after(us(2026, 3, 29, 3, 0, tz=paris)) == us(2026, 3, 30, 2, 30, tz=paris)
    # 2026-10-25: 03:00 -> 02:00; the 02:30 job runs once, not twice
    slots = at_0230.slots(us(2026, 10, 24, 12, 0, tz=paris), us(2026, 10, 26, 12, 0, tz=paris))
    assert len(slots) == 2 and at_0230.task_id(slots[0]) == "s@2026-10-25T00:30Z"


@pytest.mark.parametrize("table, message", [
    ({"cron": "61 * * * *"}, "bad cron '61 * * * *'"),
    ({"cron": "* * *"}, "bad cron"),
    ({"every": "1m", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
    ({"cron": "0 6 * * *", "every": "1m"}, "exactly one of cron and every"),
    ({}, "exactly one of cron and every"),
    ({"every": "1m", "catch_up": "some"}, "bad catch_up 'some'"),
    ({"every": "5"}, "bad every in [[schedule]] 's' '5'"),
    ({"every": "1m", "colour": "red"}, "unknown key 'colour'"),
    ({"every": "1m", "tags": ["a b"]}, "bad tag"),
    ({"every": "1m", "name": "no@at"}, "needs a name"),
])
def test_a_bad_schedule_is_one_line(table, message):
    with pytest.raises(ConfigError) as caught:
        schedules.parse([dict({"name": "s"}, **table)], "/etc/riaktq.toml")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("config file /etc/riaktq.toml: ")


def test_duplicate_names_are_refused():
    with pytest.raises(ConfigError, match="name 'a' appears twice"):
        schedules.parse([{"name": "a", "every": "1m"}, {"name": "a", "cron": "* * * * *"}])


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_scheduler_refuses_a_bad_schedule_at_start(procs, config_file):
    add_schedules(config_file, '[[schedule]]\nname = "x"\ncron = "0 25 * * *"\n')
    result = procs.run("scheduler", "--once")
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "bad cron '0 25 * * *'" in lines[0], lines
    assert procs.run("open", "still-fine", "--in", "x").returncode == 0   # only the scheduler parses cron lines


# --- catch_up after five missed slots (the clock moved by hand) ---------------------

def run_at(monkeypatch, scheduler, now):
    monkeypatch.setattr("riaktq_cli.scheduler.now_us", lambda: now)
    return scheduler.iteration()


def tick_ids(store):
    return sorted(i for i in store.iter_ids() if i.startswith("tick@"))


@pytest.mark.parametrize("catch_up, expected", [
    ("last", ["tick@2026-12-02T10:05Z"]),
    ("all", [f"tick@2026-12-02T10:0{m}Z" for m in range(1, 6)]),
    ("none", []),
])
def test_catch_up_after_five_missed_slots(store, monkeypatch, catch_up, expected):
    tick = one(name="tick", cron="* * * * *", catch_up=catch_up)
    start = us(2026, 12, 2, 9, 59, 30)
    first = Scheduler(store, instance_timeout=30, prefetch=1, events=_NoEvents(), schedules=[tick])
    run_at(monkeypatch, first, start)
    assert tick_ids(store) == []                      # a new schedule starts now: nothing missed
    assert run_at(monkeypatch, first, start + 31_000_000)["opened"] == 1
    assert tick_ids(store) == ["tick@2026-12-02T10:00Z"]
    # no scheduler from 10:00:01 to 10:05:30: slots 10:01 ... 10:05 missed
    second = Scheduler(store, instance_timeout=30, prefetch=1, events=_NoEvents(), schedules=[tick])
    run_at(monkeypatch, second, us(2026, 12, 2, 10, 5, 30))
    assert tick_ids(store) == sorted(["tick@2026-12-02T10:00Z"] + expected)
    # and from then on, every slot while it runs, whatever catch_up says
    run_at(monkeypatch, second, us(2026, 12, 2, 10, 6, 0, 400_000))
    assert tick_ids(store)[-1] == "tick@2026-12-02T10:06Z"
    rows = schedules.rows(store, [tick], us(2026, 12, 2, 10, 6, 10))
    assert rows[0]["last_task"] == "tick@2026-12-02T10:06Z" and rows[0]["last_status"] == "todo"
    assert rows[0]["next_slot"] == "2026-12-02 10:07:00"


def test_a_slot_opened_by_a_holder_killed_before_its_record_is_not_opened_again(store, monkeypatch):
    """The previous holder created the slot's task and died before writing
    the record: its successor meets the duplicate id and moves on."""
    tick = one(name="tick", every="1m", catch_up="all")
    first = Scheduler(store, instance_timeout=30, prefetch=1, events=_NoEvents(), schedules=[tick])
    run_at(monkeypatch, first, us(2026, 12, 2, 9, 59, 30))
    monkeypatch.setattr(store, "put_record", _fail_for("schedule.tick", store.put_record))
    with pytest.raises(RuntimeError):
        run_at(monkeypatch, first, us(2026, 12, 2, 10, 0, 1))
    monkeypatch.undo()
    assert tick_ids(store) == ["tick@2026-12-02T10:00Z"]
    before = store.get_task("tick@2026-12-02T10:00Z")
    second = Scheduler(store, instance_timeout=30, prefetch=1, events=_NoEvents(), schedules=[tick])
    assert run_at(monkeypatch, second, us(2026, 12, 2, 10, 1, 0, 5))["opened"] == 2   # one of them already there
    assert tick_ids(store) == ["tick@2026-12-02T10:00Z", "tick@2026-12-02T10:01Z"]
    assert store.get_task("tick@2026-12-02T10:00Z") == before


class _NoEvents:
    def emit(self, *args, **kwargs):
        pass


def _fail_for(name, put_record):
    def put(kind, record_name, doc):
        if record_name == name:
            raise RuntimeError("killed before the record was written")
        return put_record(kind, record_name, doc)
    return put


# --- every slot exactly once through kill -9 and standby takeovers ------------------

SLOT = re.compile(r"^tick@(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)Z$")


def slot_seconds(task_id):
    text = SLOT.match(task_id).group(1)
    fmt = "%Y-%m-%dT%H:%M:%S" if text.count(":") == 2 else "%Y-%m-%dT%H:%M"
    return int(datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp())


def test_every_slot_opened_exactly_once_through_kills_and_takeovers(procs, store, config_file):
    add_schedules(config_file, '[[schedule]]\nname = "tick"\nevery = "1s"\ncatch_up = "all"\nin = "t"\n')
    holder = procs.start("scheduler", name="scheduler")
    standby = procs.start("scheduler", name="standby")
    wait_until(lambda: tick_ids(store), timeout=60, message="the first slot opened")
    for kill in range(3):
        seen = len(tick_ids(store))
        wait_until(lambda: len(tick_ids(store)) >= seen + 2, timeout=60, message=f"slots opened before kill {kill}")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        holder, standby = standby, procs.start("scheduler", name=f"standby-{kill}")
    stopped_at = time.time()
    wait_until(lambda: tick_ids(store) and slot_seconds(tick_ids(store)[-1]) >= stopped_at + 1, timeout=60,
               message="the last holder opens slots after the kills")
    procs.stop(holder)
    procs.stop(standby)
    slots = [slot_seconds(i) for i in tick_ids(store)]
    assert slots == list(range(slots[0], slots[-1] + 1)), "a slot was skipped"
    opened = [line.split()[-1] for proc in procs.procs
              for line in open(proc.log_path, encoding="utf-8") if "schedule tick: opened" in line]
    assert sorted(opened) == tick_ids(store), "a slot was opened twice (or not by a scheduler)"
    shown = json.loads(procs.run("schedules", "--format", "json").stdout)
    assert shown[0]["name"] == "tick" and shown[0]["last_task"] == tick_ids(store)[-1]
