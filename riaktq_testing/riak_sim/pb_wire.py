"""The PB front's wire: frames (4-byte big-endian length of code + payload,
the code byte, the payload) around the protobuf messages generated from
the client's riak.proto, and the two kinds of error answers."""

from __future__ import annotations

import struct

from riaktq_cli.riak.pb import riak_pb2 as pb

__all__ = ["pb", "frame", "error_frame", "PBError", "PBCrash", "CRASH_PREFIX"]

_HEADER = struct.Struct(">IB")
CRASH_PREFIX = "Error processing incoming message: "


def frame(code: int, payload: bytes = b"") -> bytes:
    """One PB frame: length of (code + payload), the code, the payload."""
    return _HEADER.pack(len(payload) + 1, code) + payload


def error_frame(text: str) -> bytes:
    """RpbErrorResp: Riak always sends errcode 0."""
    return frame(0, pb.RpbErrorResp(errmsg=text.encode("utf-8", "surrogateescape"),
                                    errcode=0).SerializeToString())


class PBError(Exception):
    """An RpbErrorResp; the connection stays usable."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class PBCrash(Exception):
    """A request that crashes Riak's connection process: one RpbErrorResp
    (CRASH_PREFIX + text; on Riak the text ends in a long stack trace),
    then the connection is closed.  Clients must reconnect on that prefix."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text
