"""What every long-running process needs besides its work: logging in text or
JSON lines (logs.py, also how a failure reaches the user in one line),
signal handling and dying with the parent (signals.py), saying once when the
store goes away and once when it is back (outage.py), and the process's own
Prometheus counters (instruments.py).
"""
