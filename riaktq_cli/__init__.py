"""riaktq: a persistent task queue with one scheduler and many workers.

The store (embedded SQLite or Riak KV) is the only thing the processes share;
see docs/architecture.md for how scheduler and workers talk through it.
"""

__version__ = "0.1.0"
