"""Shell completion of task ids and instance names, where it is cheap.

click asks these while the user presses Tab, without running the command
group (no App, no logging), so they read the config themselves, never
create a store, never print, and give up quietly on any error. Instance
names are one index query on both stores; task ids only on the embedded
store (on Riak every listed id would be an HTTP round trip per Tab).
"""

MAX_TASK_IDS = 5000  # ids looked at per Tab, oldest first


def _store(ctx, riak_ok):
    from riaktq_cli.config import loading as config
    from riaktq_cli.cli.main import missing_queue
    from riaktq_cli.store import open_store

    cfg = config.load(ctx.find_root().params.get("config_path"))
    if cfg.backend == "riak" and not riak_ok:
        return None
    missing_queue(cfg)
    return open_store(cfg)


def _complete(ctx, riak_ok, names):
    from click.shell_completion import CompletionItem
    try:
        store = _store(ctx, riak_ok)
        if store is None:
            return []
        try:
            return [CompletionItem(n) for n in names(store)]
        finally:
            store.close()
    except Exception:
        return []


def complete_task_id(ctx, param, incomplete):
    """click `shell_complete` for a task id argument."""
    def names(store):
        found = []
        for n, task_id in enumerate(store.iter_ids()):
            if n >= MAX_TASK_IDS:
                break
            if task_id.startswith(incomplete):
                found.append(task_id)
        return found
    return _complete(ctx, False, names)


def complete_instance(ctx, param, incomplete):
    """click `shell_complete` for an instance name argument."""
    from riaktq_cli.store.base import INSTANCE
    from riaktq_cli.core.protocol import split_handovers
    return _complete(ctx, True, lambda store: sorted(n for n in split_handovers(store.list_records(INSTANCE))[0]
                                                     if n.startswith(incomplete)))
