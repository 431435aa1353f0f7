"""The Python API: `Queue` (queue.py: open, get, wait, tasks, requeue, rm,
purge, stats), the operator's controls it inherits (control.py: cancel,
pause and resume, tag limits, schedules, forgetting an instance), the checks
on what an application hands it (inputs.py), and the queue's figures
(figures.py). The CLI's commands are thin wrappers over it, so a script and
an operator get the same answers and the same refusals.
"""
