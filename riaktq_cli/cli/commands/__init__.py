"""The riaktq subcommands, one module per group of related commands."""
