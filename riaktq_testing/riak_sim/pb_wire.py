"""The PB front's wire: frames (4-byte big-endian length of code + payload,
the code byte, the payload) around the protobuf messages generated from
the client's riak.proto, and the two kinds of error answers."""

from __future__ import annotations

import re
import struct

from riaktq_cli.riak.pb import riak_pb2 as pb

__all__ = ["pb", "frame", "error_frame", "PBError", "PBCrash", "CRASH_PREFIX", "INTEGER",
           "text_of", "raw_of", "erl_bin", "has_field"]

_HEADER = struct.Struct(">IB")
CRASH_PREFIX = "Error processing incoming message: "
INTEGER = re.compile(rb"[+-]?[0-9]+")  # what Erlang's binary_to_integer takes


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


def text_of(raw: bytes) -> str:
    """Bucket names, keys and 2i terms as the model keeps them (str; bytes
    that are not UTF-8 survive as surrogates, as on the HTTP front)."""
    return raw.decode("utf-8", "surrogateescape")


def raw_of(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def erl_bin(raw: bytes | None) -> str:
    """A binary as Erlang prints it: <<"abc">>, <<1,2>>, or undefined."""
    if raw is None:
        return "undefined"
    if all(32 <= b < 127 for b in raw):
        return '<<"' + raw.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') + '">>'
    return "<<" + ",".join(str(b) for b in raw) + ">>"


def has_field(msg, name: str) -> bool:
    """Whether an optional field was sent (False when our .proto lacks it)."""
    return name in msg.DESCRIPTOR.fields_by_name and msg.HasField(name)
