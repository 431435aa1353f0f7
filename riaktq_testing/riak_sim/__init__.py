"""A Riak KV test server: the parts of Riak's HTTP and Protocol Buffers APIs
a task store uses.

Why: the Riak task store and its client must be tested against something that
behaves like Riak -- vector clocks, siblings, tombstones, 2i with pagination,
the exact status codes, headers and error bodies -- and must be tested under
failure (503 bursts, slow answers, dropped connections, nodes going down and
coming back). A real Riak cluster is too heavy for unit tests and cannot be
made to fail on cue; this server can. What it answers is checked against real
Riak 3.2.2 answers (the transcripts replayed by `replay.py`).

One module per part:

* ``model``    -- bucket types and props, objects with dotted version vectors,
  siblings, tombstones (reaped after ``delete_mode`` ms), 2i entries;
* ``front``    -- HTTP parsing, answering, routing; root, ping, stats,
  listing (counted, so tests can assert nobody lists), bucket/type props;
* ``objects``  -- GET 200 / 300 (vtag list or multipart) / 404, ``?vtag=``,
  PUT/POST with indexes, conditional headers, ``returnbody``, generated keys,
  quorum and timeout parameter checks; DELETE;
* ``index``    -- 2i: exact and range queries, ``$key`` and ``$bucket``,
  ``max_results`` with opaque continuations, ``return_terms``,
  ``pagination_sort``, ``term_regex``, ``stream``; unpaginated results in a
  shuffled order, as from a real cluster's coverage query;
* ``wire``     -- webmachine's details: halts and their bodies, decoding,
  content negotiation, continuations;
* ``security`` -- Riak security (``Security``): users, passwords, grants; over
  TLS (TLS 1.2 only, as Riak 3.2) requests need basic auth (401) and the grant
  for what they do (403); over plain HTTP they get 426 (transcripts 09, 09b);
* ``faults``   -- ``fail_next``, ``slow_next``, ``drop_next``,
  ``sibling_storm``; with ``set_down`` and ``security.set_password`` (a
  password changed under a running client) on the server; a node that is
  stopping (``set_stopping``, ``stop_like_riak``: webmachine's 404 page to
  everything, then refused) and a rejoin (``rejoin``: a ``Handoff`` during
  which 2i leaves out what was written meanwhile, and /stats says so);
* ``control``  -- ``/__test__/...``: the same switches for other processes;
* ``pb_front`` -- the Protocol Buffers API (``pb_port=``): frames, StartTls
  then RpbAuthReq with security on, the same fault switches; requests in
  ``pb_kv`` and ``pb_index``, frames and errors in ``pb_wire`` (checked
  against the PB transcripts, ../shared/riak-pb-transcripts);
* ``server``   -- ``RiakTestServer``: one node on a port; ``counts`` records
  every request kind and status; ``share_with=other`` makes several servers
  the nodes of one cluster;
* ``__main__`` -- the command line::

    python -m riaktq_testing.riak_sim --port 8098
    python -m riaktq_testing.riak_sim --port 0   # prints "listening on http://127.0.0.1:PORT"
    python -m riaktq_testing.riak_sim --port 0 --secure /tmp/riak-tls --http-port 0
        # HTTPS with security on, users as in the 09 transcripts, CA in /tmp/riak-tls/ca.pem
    python -m riaktq_testing.riak_sim --port 0 --pb-port 0  # and "listening on pb://..."
    python -m riaktq_testing.riak_sim --port 0 --pb-port 0 --nodes 3  # a 3-node cluster
"""

from riaktq_testing.riak_sim.security import Security, server_tls_context
from riaktq_testing.riak_sim.server import RiakTestServer

__all__ = ["RiakTestServer", "Security", "server_tls_context"]
