"""Message codes of Riak's Protocol Buffers API and the message class each one carries.

Every PB frame is `length (4 bytes, big-endian) | code (1 byte) | payload`, where the code says
which message the payload is; a .proto cannot hold these codes, so they live here. Codes and
names are Riak's (basho/riak_pb riak_pb_messages.csv). A code with no class (ping, delete
response, StartTls...) carries no payload.
"""

from __future__ import annotations

import enum

from google.protobuf.message import Message

from riaktq_cli.riak.pb import riak_pb2


class MessageCode(enum.IntEnum):
    ERROR_RESP = 0
    PING_REQ = 1
    PING_RESP = 2
    GET_CLIENT_ID_REQ = 3
    GET_CLIENT_ID_RESP = 4
    GET_SERVER_INFO_REQ = 7
    GET_SERVER_INFO_RESP = 8
    GET_REQ = 9
    GET_RESP = 10
    PUT_REQ = 11
    PUT_RESP = 12
    DEL_REQ = 13
    DEL_RESP = 14
    LIST_KEYS_REQ = 17
    LIST_KEYS_RESP = 18
    GET_BUCKET_REQ = 19
    GET_BUCKET_RESP = 20        # also answers GET_BUCKET_TYPE_REQ
    INDEX_REQ = 25
    INDEX_RESP = 26
    GET_BUCKET_TYPE_REQ = 31
    AUTH_REQ = 253
    AUTH_RESP = 254
    START_TLS = 255             # both ways: the request, and the go-ahead for the TLS handshake


#: The message class of each code that has a payload; the others are a bare code.
MESSAGE_OF_CODE: dict[MessageCode, type[Message]] = {
    MessageCode.ERROR_RESP: riak_pb2.RpbErrorResp,
    MessageCode.GET_CLIENT_ID_RESP: riak_pb2.RpbGetClientIdResp,
    MessageCode.GET_SERVER_INFO_RESP: riak_pb2.RpbGetServerInfoResp,
    MessageCode.GET_REQ: riak_pb2.RpbGetReq,
    MessageCode.GET_RESP: riak_pb2.RpbGetResp,
    MessageCode.PUT_REQ: riak_pb2.RpbPutReq,
    MessageCode.PUT_RESP: riak_pb2.RpbPutResp,
    MessageCode.DEL_REQ: riak_pb2.RpbDelReq,
    MessageCode.LIST_KEYS_REQ: riak_pb2.RpbListKeysReq,
    MessageCode.LIST_KEYS_RESP: riak_pb2.RpbListKeysResp,
    MessageCode.GET_BUCKET_REQ: riak_pb2.RpbGetBucketReq,
    MessageCode.GET_BUCKET_RESP: riak_pb2.RpbGetBucketResp,
    MessageCode.INDEX_REQ: riak_pb2.RpbIndexReq,
    MessageCode.INDEX_RESP: riak_pb2.RpbIndexResp,
    MessageCode.GET_BUCKET_TYPE_REQ: riak_pb2.RpbGetBucketTypeReq,
    MessageCode.AUTH_REQ: riak_pb2.RpbAuthReq,
}

#: The code of each message class (for sending).
CODE_OF_MESSAGE: dict[type[Message], MessageCode] = {
    cls: code for code, cls in MESSAGE_OF_CODE.items()}

#: Riak's symbolic quorum values (r, w, pr, pw, dw, rw as uint32).
QUORUM_ONE = 4294967294
QUORUM_QUORUM = 4294967293
QUORUM_ALL = 4294967292
QUORUM_DEFAULT = 4294967291
