"""Whether a Riak cluster's listings may be partial right now.

Every riaktq listing is a 2i query, which Riak answers as a coverage read
at r=1: one vnode per partition. While a node is down its partitions are
served by fallback vnodes that hold only what was written since; after it
rejoins, its own vnodes answer again before handoff has brought those
writes back (tens of seconds to minutes). Either way a listing can leave
tasks or records out while a GET by key, a quorum read, still finds them.

Each node's `GET /stats` says whether that is going on, under names real
Riak uses: `ring_members` and `connected_nodes` (a member this node is not
connected to is down or unreachable), and the handoffs in flight
(`*_handoff_inbound_active_transfers` / `..._outbound_...`, where the build
reports them). A configured node that does not answer counts as down. One
request per configured node, for operator commands only.
"""

from riaktq_cli.riak import RiakError, RiakUnavailable

_TRANSFERS = "_active_transfers"


def unsettled(client):
    """None when every node says the cluster is settled; else one line."""
    reasons = []
    for url in client.nodes:
        try:
            stats = client.node_stats(url)
        except RiakUnavailable:
            reasons.append(f"node {url} does not answer")
            continue
        except RiakError:   # /stats turned off (riak_kv_stat): this node cannot tell
            continue
        reasons.extend(_node_reasons(url, stats))
    if not reasons:
        return None
    more = f" (+{len(reasons) - 2} more)" if len(reasons) > 2 else ""
    return "the Riak cluster is catching up: " + "; ".join(reasons[:2]) + more


def _node_reasons(url, stats):
    """What one node's /stats says is not settled."""
    reasons = []
    members = set(_names(stats.get("ring_members")))
    connected = set(_names(stats.get("connected_nodes"))) | {stats.get("nodename")}
    down = sorted(members - connected)
    if down:
        reasons.append(f"{url} is not connected to ring member(s) {', '.join(down)}")
    transfers = sum(v for k, v in stats.items() if k.endswith(_TRANSFERS) and isinstance(v, int))
    if transfers:
        reasons.append(f"{url} has {transfers} handoff transfer(s) in flight")
    return reasons


def _names(value):
    return [str(v) for v in value] if isinstance(value, list) else []
