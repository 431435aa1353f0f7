"""`python -m riaktq_testing.riak_sim --port N`: a node for demos,
benchmarks and hooks; prints "listening on URL" once it serves."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from riaktq_testing.riak_sim.security import _make_tls_files, _parse_users
from riaktq_testing.riak_sim.server import RiakTestServer


def _parse_type(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:allow_mult=false,n_val=1`` -> (name, props)."""
    name, _, rest = spec.partition(":")
    props = {}
    for item in filter(None, rest.split(",")):
        key, _, val = item.partition("=")
        try:
            props[key] = json.loads(val)
        except ValueError:
            props[key] = val
    return name, props


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Riak KV HTTP test server (riaktq tests)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098, help="0 picks a free port")
    parser.add_argument("--type", action="append", default=[], metavar="NAME[:PROP=VAL,...]",
                        help="bucket type to create (default: riaktq with allow_mult=true)")
    parser.add_argument("--no-2i", action="store_true",
                        help="answer 2i queries as the bitcask backend does (500)")
    parser.add_argument("--delete-mode", default="3000",
                        help="tombstone lifetime in ms, or keep / immediate")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="close idle keep-alive connections after this many seconds")
    parser.add_argument("--secure", metavar="DIR",
                        help="Riak security on: HTTPS with a CA and certificate made (with "
                             "trustme) into DIR/ca.pem, basic auth, grants; users as in the 09 "
                             "transcripts unless --user is given")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD[:PERM,...]",
                        help="a user for --secure (default grants: all riaktq needs and more)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="with --secure: also the node's plain-HTTP listener (it answers 426)")
    parser.add_argument("--pb-port", type=int, default=None,
                        help="also serve Riak's Protocol Buffers API on this port (0 picks one; "
                             "with --secure: StartTls, then RpbAuthReq); prints a second line "
                             "\"listening on pb://HOST:PORT\"")
    parser.add_argument("--auth-failure-delay", type=float, default=5.0, metavar="SECONDS",
                        help="with --secure: how long a failed PB RpbAuthReq takes (Riak: 5)")
    parser.add_argument("--nodes", type=int, default=1, metavar="N",
                        help="a cluster of N nodes over one data set: the others on free ports "
                             "(HTTP, and PB with --pb-port), each printed on its own lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    types = dict(_parse_type(s) for s in args.type) if args.type else None
    delete_mode = int(args.delete_mode) if args.delete_mode.isdigit() else args.delete_mode
    tls = security = None
    if args.secure:
        tls = _make_tls_files(args.host, args.secure)
        security = _parse_users(args.user)
        security.auth_failure_delay = args.auth_failure_delay
    servers = []
    try:
        servers.append(RiakTestServer(args.port, args.host, types=types, backend_2i=not args.no_2i,
                                      delete_mode=delete_mode, idle_timeout=args.idle_timeout,
                                      tls=tls, security=security, pb_port=args.pb_port))
        if args.secure and args.http_port is not None:
            servers.append(RiakTestServer(args.http_port, args.host, share_with=servers[0],
                                          idle_timeout=args.idle_timeout, security=security))
        others = [RiakTestServer(0, args.host, share_with=servers[0], backend_2i=not args.no_2i,
                                 idle_timeout=args.idle_timeout, tls=tls, security=security,
                                 pb_port=None if args.pb_port is None else 0)
                  for _ in range(args.nodes - 1)]
        servers.extend(others)
    except OSError as exc:
        print(f"riak_sim: cannot listen on {args.host}: {exc.strerror or exc}", file=sys.stderr)
        for server in servers:
            server.stop()
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    extra = f" (plain HTTP {servers[1].url})" if len(servers) > 1 + len(others) else ""
    ca = f" CA {args.secure}/ca.pem" if args.secure else ""
    print(f"listening on {servers[0].url}{extra}{ca}", flush=True)
    for node in [servers[0], *others]:
        if node is not servers[0]:
            print(f"listening on {node.url}", flush=True)
        if node.pb_url:
            print(f"listening on {node.pb_url}", flush=True)
    while not done.wait(0.1):
        pass
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
