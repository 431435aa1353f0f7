"""The task store: the contract every store keeps (base.py: tasks and their
transitions written atomically per task, single-writer records, the lease's
copies, partial failure spelled out) and its two implementations -- the
embedded SQLite store (sqlite.py) and the Riak KV store (riak*.py: tasks as
JSON objects with 2i terms, records, batch-open notes, cluster state) -- and
`open_store`, which picks the one a configuration names. Both pass one
contract suite (tests/test_store_contract.py).
"""

from riaktq_cli.store.base import INBOX, INSTANCE, SCHEDULER, Store  # noqa: F401


def open_store(config):
    """The store for `config`: SQLite by default, Riak KV with backend = "riak".

    Imports lazily so `riaktq open` on SQLite never pays for the HTTP client.
    """
    if config.backend == "riak":
        from riaktq_cli.store.riak import RiakStore
        return RiakStore.from_config(config)
    from riaktq_cli.store.sqlite import SqliteStore
    return SqliteStore(config.sqlite_path, busy_timeout=config.get("sqlite", "busy_timeout"))
