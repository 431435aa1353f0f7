"""Riak's Protocol Buffers API: our riak.proto, its generated riak_pb2, the message codes."""
