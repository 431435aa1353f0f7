"""Wake-up hints: a datagram that says "look now", and nothing else.

On Riak nobody learns of a change but by reading, so every step of a task's
way (the scheduler sees the open, the worker sees its inbox, the scheduler
sees the result) used to wait for a poll. A hint cuts that wait: after a
write, the writer sends one UDP datagram to the process that should look,
and that process runs its next pass at once. `open` and the Python API hint
the scheduler; the scheduler hints a worker after writing its inbox; a
worker hints the scheduler after writing a result.

A hint carries no data, so nothing a hint says can be wrong: the store stays
the only truth, and polling goes on beside it as the safety net. A hint may
be lost, late, duplicated, forged, or blocked by a firewall; the worst each
can do is an extra look or none. What a hint costs the receiver is bounded:

- Coalescing. The listener thread takes one datagram, empties what else is
  queued (the socket's receive buffer is kept small, so a flood mostly
  drops in the kernel), reports one hint, then sleeps GAP before it reads
  again. A flood makes a process look at most every GAP, never more.
- A tag. Each datagram carries 8 bytes derived from which queue this is
  (the store's identity: the SQLite file, or Riak's bucket type and
  prefix), so two queues on one host do not wake each other; a datagram
  without the tag is counted and dropped.

The addresses travel in records the processes already write: the scheduler
publishes its own in `scheduler/settings` (read by `open` and the API) and in
every inbox it writes (read by the worker); a worker publishes its own in
its instance record (read by the scheduler every iteration).

Where a store tells a process cheaply that someone wrote (SQLite's
data_version) hints add nothing, so `auto` listens only where it does not
(Riak). See docs/architecture.md ("Wake-up hints").
"""

import hashlib
import logging
import socket
import threading
import time

from riaktq_cli.runtime import instruments

log = logging.getLogger("riaktq")

MAGIC = b"riaktq-hint1:"
TAG_BYTES = 8
# The coalescing gap: a listener reports at most one hint per GAP.
GAP = 0.005
# Datagrams read per gap beyond the first; the kernel drops the rest of a flood.
DRAIN_MAX = 16
# Small on purpose: one pending hint is as good as a thousand.
RECEIVE_BUFFER = 4096
OFF, AUTO = "off", "auto"


def tag_of(identity):
    """The tag of the queue whose store is `identity` (Config.queue_identity)."""
    return hashlib.blake2b(identity.encode("utf-8", "surrogateescape"), digest_size=TAG_BYTES).digest()


def split_address(text):
    """("host", port) of "host:port" (an IPv6 host in brackets); None if malformed."""
    if not isinstance(text, str):
        return None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def join_address(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def route_address(toward):
    """The local address this host uses to reach `toward` ("host:port" of a
    store node): other machines that reach the store likely reach us there.
    No packet is sent (a UDP connect only picks a route)."""
    target = split_address(toward) if toward else None
    if target is None:
        return "127.0.0.1"
    try:
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(target)
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class Hints:
    """One process's end of the hints: what it listens on (if anything)
    and how it sends. `listen`: "off", "auto" (an ephemeral port on the
    address that reaches `route_to`), "HOST" (an ephemeral port there) or
    "HOST:PORT". Never raises once built: a hint that cannot be sent is a
    hint lost, which polling covers."""

    def __init__(self, tag, listen=OFF, route_to=None):
        self.tag = tag
        self.listen_setting = listen
        self.route_to = route_to
        self.datagram = MAGIC + tag if tag else None
        self.address = None        # "host:port" others send to, once listening
        self.received = 0          # hints reported (after coalescing)
        self.ignored = 0           # datagrams without our tag
        self.sent = 0
        self._sock = None
        self._send_sock = None
        self._thread = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def listening(self):
        return self.address is not None

    # --- receiving -----------------------------------------------------------
    def listen(self, on_hint):
        """Bind and start the listener thread, which calls `on_hint()` (from
        that thread: it must only set a flag or write to a pipe) at most once
        per GAP. Returns the address to publish, or None when off or the
        address cannot be bound (said once: polling carries on)."""
        if self.listen_setting == OFF or self.datagram is None:
            return None
        host, port = self._bind_target()
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((host, port))
        except OSError as exc:
            log.warning("wake-up hints off: cannot listen on %s: %s; polling only",
                        join_address(host, port), exc.strerror or exc)
            return None
        bound_host, bound_port = sock.getsockname()[:2]
        shown = route_address(self.route_to) if bound_host in ("0.0.0.0", "::") else bound_host
        self._sock = sock
        self.address = join_address(shown, bound_port)
        self._thread = threading.Thread(target=self._receive, args=(on_hint,), name="riaktq-hints", daemon=True)
        self._thread.start()
        return self.address

    def _bind_target(self):
        if self.listen_setting == AUTO:
            return route_address(self.route_to), 0
        parsed = split_address(self.listen_setting)
        if parsed is not None:
            return parsed
        return self.listen_setting.strip("[]"), 0   # a host alone: an ephemeral port there

    def _receive(self, on_hint):
        sock, datagram = self._sock, self.datagram
        while not self._closed:
            try:
                first = sock.recv(64)
            except OSError:
                if self._closed:
                    return
                time.sleep(GAP)
                continue
            valid = first == datagram
            ignored = 0 if valid else 1
            for _ in range(DRAIN_MAX):
                try:
                    more = sock.recv(64, socket.MSG_DONTWAIT)
                except OSError:
                    break
                if more == datagram:
                    valid = True
                else:
                    ignored += 1
            if self._closed:
                return
            if ignored:
                self.ignored += ignored
                instruments.count_hint("ignored", ignored)
            if valid:
                self.received += 1
                instruments.count_hint("received")
                on_hint()
            time.sleep(GAP)   # coalesce: what arrives meanwhile is one more hint at most

    # --- sending -------------------------------------------------------------
    def send(self, address):
        """One hint to `address` ("host:port", as published); False if it
        could not leave this host (which is no error: polling covers it)."""
        target = split_address(address)
        if target is None or self.datagram is None or self._closed:
            return False
        try:
            with self._lock:
                if self._send_sock is None:
                    self._send_sock = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET,
                                                    socket.SOCK_DGRAM)
                    self._send_sock.setblocking(False)
                self._send_sock.sendto(self.datagram, target)
        except OSError:
            return False   # full buffer, no route, another family: a lost hint
        self.sent += 1
        instruments.count_hint("sent")
        return True

    def close(self):
        """Stop the listener (a datagram to itself wakes its blocked read)."""
        self._closed = True
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                host, port = sock.getsockname()[:2]
                sock.sendto(b"", ("127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host, port))
            except OSError:
                pass
            if self._thread is not None:
                self._thread.join(timeout=1.0)
            sock.close()
        with self._lock:
            if self._send_sock is not None:
                self._send_sock.close()
                self._send_sock = None


def off():
    """Hints that neither listen nor send (tests, and a store without a config)."""
    return Hints(None)


def for_config(config, listen=OFF):
    """The hints of a process of the queue `config` names (a loaded Config),
    listening as `listen` says (a hint_listen setting). `auto` is off on
    the embedded store: its processes see every write through SQLite's
    data_version, sooner than a datagram would tell them."""
    if listen == AUTO and config.backend == "sqlite":
        listen = OFF
    return Hints(tag_of(config.queue_identity()), listen, route_to=config.first_node())
