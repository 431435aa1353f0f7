"""The `riaktq` command: main.py (the click group, global options, the one
place an error becomes a line and an exit code), fast_open.py (the fast lane
for a plain `riaktq open`, which skips click), options.py and params.py (the
shared flags and parameter types), completion.py (shell completion of ids and
names), partial.py (warnings and refusals while a Riak cluster catches up)
and commands/ (one module per group of subcommands).
"""
