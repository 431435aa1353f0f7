"""Opening the store a configuration names."""

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
