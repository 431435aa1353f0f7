"""The scheduler's settings, published in the store for everyone who judges
instances.

`instances` and `stats` decide whether a worker is lost by its heartbeat
age. Judged with their own config's `instance_timeout` they disagree with a
scheduler started with another `--instance-timeout`; so the scheduler writes
the settings it runs with (record `scheduler/settings`) each time it takes
the lease, and the views use those, falling back to the config only while
no scheduler has ever run.
"""

import logging

from riaktq_cli.core.clock import now_us
from riaktq_cli.core.errors import StoreError
from riaktq_cli.core.records import SchedulerSettings
from riaktq_cli.store.base import SCHEDULER

log = logging.getLogger("riaktq")
NAME = "settings"


def publish(store, owner, instance_timeout_us, interval, prefetch, hint=None):
    """Write the settings the scheduler `owner` runs with, and where it
    takes wake-up hints (`hint`, "host:port"). Never raises: a scheduler
    that could not publish still schedules (and says so)."""
    try:
        store.put_record(SCHEDULER, NAME, SchedulerSettings(owner, instance_timeout_us / 1e6, interval, prefetch,
                                                            now_us(), hint).to_dict())
    except StoreError as exc:
        log.warning("could not publish the scheduler's settings: %s", exc)


def read(store):
    """The published settings (records.SchedulerSettings: owner,
    instance_timeout (s), interval (s), prefetch, since (µs), hint) or None if no
    scheduler has published any."""
    return SchedulerSettings.from_dict(store.get_record(SCHEDULER, NAME))


def instance_timeout(store, fallback):
    """(seconds, source): the scheduler's instance timeout if published,
    else `fallback` (the config's)."""
    settings = read(store)
    if settings is None:
        return fallback, "config"
    return float(settings.instance_timeout), "scheduler"
