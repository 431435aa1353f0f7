"""The pipe between a worker and its handler process: framed pickles.

Each message is a 4-byte big-endian length and a pickle. Both ends are our
own code started by us, so pickle is safe here and is the cheapest way to
carry task inputs and outputs (bytes) without encoding them. The reader
keeps a buffer and returns every complete frame a read brought, so a burst
of results costs one wake-up, not one per result.
"""

import os
import pickle
import struct

_HEADER = struct.Struct(">I")
READ_SIZE = 1 << 16


def encode(message):
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def write_all(fd, data):
    """Blocking write of every byte (the handler process's side)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Collects bytes from a pipe and cuts them into messages."""

    def __init__(self, fd):
        self.fd = fd
        self._buf = bytearray()

    def read(self):
        """One read (the fd must be readable): (messages, eof)."""
        chunk = os.read(self.fd, READ_SIZE)
        if not chunk:
            return self._frames(), True
        self._buf += chunk
        return self._frames(), False

    def _frames(self):
        out = []
        buf = self._buf
        start = 0
        while len(buf) - start >= 4:
            (size,) = _HEADER.unpack_from(buf, start)
            if len(buf) - start - 4 < size:
                break
            out.append(pickle.loads(buf[start + 4:start + 4 + size]))
            start += 4 + size
        if start:
            del buf[:start]
        return out
