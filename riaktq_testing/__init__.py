"""Test doubles that ship with riaktq: `riak_sim`, a Riak KV HTTP server
for tests, benchmarks and demos (installed with the `test` extra's users in
mind; it needs nothing beyond the standard library, and trustme for --secure)."""
