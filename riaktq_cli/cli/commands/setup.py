"""Setting up: `init` writes a config file, `check` tests the store."""

from pathlib import Path

import click

from riaktq_cli.core.errors import Incomplete, RiaktqError
from riaktq_cli.core.output import escape


@click.command("init")
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--riak", "riak_url", metavar="URL", help="Configure the Riak store with this node, e.g. pb://127.0.0.1:8087 or http://127.0.0.1:8098 (pbs:// or https:// for a node with security on); an http(s):// node on Riak's port 8098 (or 8443) that also answers on PB port 8087 is written as pb(s)://.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init_cmd(app, path, riak_url, force):
    """Write a commented config file (default: ./riaktq.toml).

    \b
    Examples:
      riaktq init                                  # embedded SQLite store
      riaktq init --riak pb://10.0.0.1:8087        # a Riak KV cluster (Protocol Buffers)
      riaktq init --riak http://10.0.0.1:8098      # ... pb:// if the node answers on 8087
      riaktq init --riak pbs://10.0.0.1:8087       # ... with security on: then edit [riak]
    """
    from riaktq_cli.config import loading as config
    if riak_url:
        riak_url = config.check_node_url(riak_url, "--riak")
        if riak_url.startswith(("http://", "https://")):
            from riaktq_cli.riak.pb.probe import pb_address_for_standard_node
            pb_url = pb_address_for_standard_node(riak_url)
            if pb_url:
                click.echo(f"{riak_url} also answers on Riak's Protocol Buffers port: using "
                           f"{pb_url} (faster; see docs/riak.md)")
                riak_url = pb_url
    target = Path(path or app.config_path or config.DEFAULT_NAME)
    if target.exists() and not force:
        raise RiaktqError(f"{target} already exists (use --force to overwrite)")
    try:
        target.write_text(config.template(riak_url))
    except OSError as exc:
        raise RiaktqError(f"cannot write {target}: {exc.strerror}") from None
    cfg = config.load(str(target))  # the template must always load
    click.echo(f"wrote {target}")
    click.echo(escape(cfg.store_line()))
    if cfg.backend == "sqlite":
        from riaktq_cli.api.queue import Queue
        Queue.from_loaded(cfg).close()  # the embedded store: create it now
        click.echo(f"created the queue at {cfg.sqlite_path}")


@click.command("check")
@click.pass_obj
def check_cmd(app):
    """Check that the configured store is reachable, sound and writable.

    On SQLite: the file passes `PRAGMA quick_check` and takes a write (in a
    transaction rolled back). On Riak: each node answers ping, the bucket
    type exists with allow_mult = true, and secondary indexes work. On both:
    a probe record is written, read back and deleted. Exit 1 if any check
    fails.

    \b
    Examples:
      riaktq check
      riaktq --config /etc/riaktq/riaktq.toml check
    """
    from riaktq_cli.views import probe

    cfg = app.config
    click.echo(f"config: {cfg.path or 'built-in defaults (no config file)'}")
    click.echo(escape(cfg.store_line()))

    def report(checks):
        """✓ passed, ✗ failed (exit 1), ! works but worth changing (ok is None)."""
        ok_all = True
        for ok, line in checks:
            ok_all &= ok is not False
            click.echo(f"{'!' if ok is None else '✓' if ok else '✗'} {escape(line)}")
        return ok_all

    if cfg.backend == "sqlite" and not report(probe.sqlite_file(cfg.sqlite_path)):
        raise Incomplete()  # opening the store would fail or create it
    store = app.store()
    ok_all = report(store.check())
    ok_all = report(probe.record_round_trip(store)) and ok_all
    if not ok_all:
        raise Incomplete()  # each ✗ said what
