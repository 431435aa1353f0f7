"""Does a node answer on Riak's Protocol Buffers port? For `riaktq init --riak`.

Given the HTTP address an operator typed, one RpbPingReq to the same host's PB port tells
which PB address to configure instead: ``pb://`` when the ping is answered, ``pbs://`` when
the node says security is on (it wants StartTls first). Anything else -- nothing listening, a
firewall, something that is not Riak -- keeps the HTTP address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .answers import STARTTLS_FIRST
from .codes import MessageCode
from .connection import PbConnection, PbErrorAnswer
from .transport import DEFAULT_PB_PORT

# Riak's own HTTP(S) ports: a node answering there has its PB API on 8087. Behind any other
# port (a dev cluster, a test server) the PB port is someone else's guess, and 8087 on the
# same host may be another node: no probe then.
STANDARD_HTTP_PORTS = (8098, 8443)


def pb_address_for_standard_node(http_url: str) -> str | None:
    """pb_address_for on port 8087 when ``http_url`` uses Riak's standard port, else None."""
    return pb_address_for(http_url) if urlsplit(http_url).port in STANDARD_HTTP_PORTS else None


def pb_address_for(http_url: str, port: int = DEFAULT_PB_PORT, timeout: float = 1.0) -> str | None:
    """The pb:// or pbs:// address of the node at ``http_url``, or None if it has no PB port."""
    host = urlsplit(http_url).hostname
    if not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    try:
        conn = PbConnection.open(host, port, timeout)
    except OSError:
        return None
    try:
        conn.request(MessageCode.PING_REQ, None, MessageCode.PING_RESP)
        return f"pb://{shown}:{port}"
    except PbErrorAnswer as exc:
        return f"pbs://{shown}:{port}" if exc.text.startswith(STARTTLS_FIRST) else None
    except OSError:
        return None
    finally:
        conn.close()
