"""The scheduler: the one process (a lease holder, with hot standbys) that
moves tasks. process.py holds the lease and runs iterations; iteration.py is
one iteration -- commit the results in the workers' outboxes, assign todo
tasks to instances with free slots (assigning.py, prefetch.py), roll back
the runs of instances gone for the instance timeout -- and owns the parts it
hands work to: the lease (lease.py, epochs that only grow), due tasks
(due.py), cancel marks (cancelling.py), pause and tag limits (pausing.py,
limits.py), periodic schedules (schedules.py), forgetting gone instances
(forgetting.py), the daily purge (housekeeping.py), what a short listing or
an empty read may and may not mean (sightings.py, inbox_reads.py), and the
events file (events.py).
"""
