"""Setting up: `init` writes a config file, `check` tests the store."""

from pathlib import Path

import click

from riaktq_cli.errors import RiaktqError


@click.command("init")
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--riak", "riak_url", metavar="URL", help="Configure the Riak store with this node, e.g. http://127.0.0.1:8098 (https://... for a node with security on).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init_cmd(app, path, riak_url, force):
    """Write a commented config file (default: ./riaktq.toml).

    \b
    Examples:
      riaktq init                                  # embedded SQLite store
      riaktq init --riak http://10.0.0.1:8098      # a Riak KV cluster
      riaktq init --riak https://10.0.0.1:8443     # ... with security on: then edit [riak]
    """
    from riaktq_cli import config
    if riak_url:
        riak_url = config.check_node_url(riak_url, "--riak")
    target = Path(path or app.config_path or config.DEFAULT_NAME)
    if target.exists() and not force:
        raise RiaktqError(f"{target} already exists (use --force to overwrite)")
    try:
        target.write_text(config.template(riak_url))
    except OSError as exc:
        raise RiaktqError(f"cannot write {target}: {exc.strerror}") from None
    config.load(str(target))  # the template must always load
    click.echo(f"wrote {target}")


@click.command("check")
@click.pass_obj
def check_cmd(app):
    """Check that the configured store is reachable and set up right.

    On Riak: each node answers ping, the bucket type exists with
    allow_mult = true, and secondary indexes work. Exit 1 if any check fails.
    """
    cfg = app.config
    click.echo(f"config: {cfg.path or 'built-in defaults (no config file)'}")
    ok_all = True
    for ok, line in app.store().check():
        ok_all &= ok
        click.echo(f"{'✓' if ok else '✗'} {line}")
    if not ok_all:
        raise click.exceptions.Exit(1)
