"""Listings that may be partial: what operator commands say and refuse.

A store whose listings can leave things out for a while (a Riak cluster
catching up after a node went down or rejoined; see store/riak_cluster.py)
says so through `Queue.listings_partial()`. Commands that select tasks by
status then:

- `tasks --status`, `report`: print what they found and warn on stderr
  (one line) that it may be partial;
- `purge`, `requeue --status`, `cancel --status/--tag/--age`: refuse (exit
  3, one line) unless `--force`, since acting on a subset is a decision an
  operator should make knowingly; `--dry-run` only warns;
- `stats`: shows it in the figures (`partial`, a reason or null).

One check per command (a request per Riak node), never per task.
"""

import sys

from riaktq_cli.errors import NotSettled
from riaktq_cli.output import escape


def warn(queue):
    """One line on stderr if listings may be partial now; the reason or None."""
    reason = queue.listings_partial()
    if reason:
        sys.stderr.write(f"riaktq: warning: listings may be partial: {escape(reason)}\n")
    return reason


def refuse_unless_forced(queue, force, dry_run, what):
    """NotSettled (exit 3) for a change by selection while listings may be
    partial, unless `force`; with `dry_run` (or forced) only the warning."""
    if force or dry_run:
        warn(queue)
        return
    reason = queue.listings_partial()
    if reason:
        raise NotSettled(f"{what}: not now, the selection may be partial ({reason}); "
                         "try again once the cluster has settled, or give --force")
