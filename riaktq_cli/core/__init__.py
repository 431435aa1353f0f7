"""The task and the protocol's vocabulary, with no I/O: the task record and
its pure transitions (task.py: open, assign, close, restart, rollback,
cancel), the checks on what a task may hold (task_checks.py), its history,
the protocol records scheduler and workers exchange through the store
(protocol.py), errors, the one clock every component reads time through
(clock.py, so tests and the simulation can fake it), durations and text
escaping. Everything else builds on this package; it imports nothing of
riaktq but itself.
"""
