"""What an operator watches: `stats` as text and its live view (stats.py), the
Prometheus families and the scheduler's /metrics endpoint (metrics.py),
reports of tasks by status and age (report.py), the daily observer run from
cron (observer.py), and the store probe of `riaktq check` (probe.py). Views
read through the API and the store; they never change a task.
"""
