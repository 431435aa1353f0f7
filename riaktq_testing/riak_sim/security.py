"""Riak security: users, passwords, grants, TLS -- and the handler's
authorization checks, as a secure Riak 3.2 node answers (transcripts 09, 09b)."""

from __future__ import annotations

import base64
import ssl
import threading
from urllib.parse import urlsplit

from riaktq_testing.riak_sim.wire import _HTTPS_ONLY, _Halt, _WM_401


class Security:
    """Riak security as `riak admin security` sets it up: users, passwords,
    grants.  One object is shared by the listeners of a node (HTTPS and plain
    HTTP) and by the nodes of a cluster, as Riak keeps it cluster-wide.

    Grants are (permission, scope) pairs; a scope is ``"any"``, a bucket type,
    or ``(type, bucket)``, as in ``grant riak_kv.get on riaktq to reader``.
    Every change applies to the next request (a password changed or expired
    under a running client is a fault switch).
    """

    ALL = ("riak_kv.get", "riak_kv.put", "riak_kv.delete", "riak_kv.index", "riak_kv.list_keys",
           "riak_kv.list_buckets", "riak_core.get_bucket", "riak_core.set_bucket",
           "riak_core.get_bucket_type", "riak_core.set_bucket_type")

    def __init__(self, *, auth_delay: float = 0.0, auth_failure_delay: float = 5.0):
        self.lock = threading.Lock()
        self.passwords: dict[str, str] = {}
        self.grants: dict[str, set] = {}
        # Seconds a PB RpbAuthReq takes: Riak checks a password in ~0.3 s and
        # answers a failure after a fixed 5 s (transcripts 09, 09b); tests
        # that do not measure it set the failure delay short.
        self.auth_delay = auth_delay
        self.auth_failure_delay = auth_failure_delay

    def add_user(self, name: str, password: str, grants=(), on="any") -> "Security":
        with self.lock:
            self.passwords[name] = password
            self.grants.setdefault(name, set())
        self.grant(name, grants, on)
        return self

    def set_password(self, name: str, password: str) -> None:
        with self.lock:
            if name not in self.passwords:
                raise KeyError(f"no user {name!r}")
            self.passwords[name] = password

    def grant(self, name: str, perms, on="any") -> None:
        perms = [perms] if isinstance(perms, str) else list(perms)
        with self.lock:
            self.grants.setdefault(name, set()).update((p, on) for p in perms)

    def revoke(self, name: str, perms, on="any") -> None:
        perms = [perms] if isinstance(perms, str) else list(perms)
        with self.lock:
            self.grants.setdefault(name, set()).difference_update((p, on) for p in perms)

    def authenticate(self, header: str | None) -> str | None:
        """The user a basic ``Authorization`` header proves, or None."""
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.check_password(user, password) else None

    def check_password(self, user: str, password: str) -> bool:
        with self.lock:
            known = self.passwords.get(user)
        return known is not None and known == password

    def allowed(self, user: str, perm: str, btype: str, bucket: str | None) -> bool:
        with self.lock:
            grants = self.grants.get(user, set())
            return any((perm, scope) in grants for scope in ("any", btype, (btype, bucket)))


def server_tls_context(certfile: str, keyfile: str | None = None,
                       client_ca: str | None = None) -> ssl.SSLContext:
    """A server context as Riak 3.2's: TLS 1.2 only.  ``client_ca``: ask for
    (and verify) a client certificate signed by that CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if client_ca:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class SecurityMixin:
    """webmachine's is_authorized and forbidden for the KV resources."""

    # -- checks shared by the KV resources -----------------------------

    def _check_authorized(self):
        """webmachine's is_authorized, as Riak's: plain HTTP to a secure node
        is 426 (credentials or not), no/wrong credentials 401."""
        security = self.riak.security
        if security is None:
            return None
        if self.riak.tls is None:
            raise _Halt(426, _HTTPS_ONLY, ctype=None)
        user = security.authenticate(self.headers.get("Authorization"))
        if user is None:
            raise _Halt(401, _WM_401, headers=[("WWW-Authenticate", 'Basic realm="Riak"')],
                        ctype="text/html")
        return user

    def _check_forbidden(self, perm: str | None = None, btype: str = "default",
                         bucket: str | None = None):
        """webmachine's is_authorized then forbidden: credentials, the
        Origin/Referer rule, then the user's grant for ``perm``."""
        user = self._check_authorized()
        if self.headers.get("Origin") == "null":
            raise _Halt(403, b"")
        referer = self.headers.get("Referer")
        if referer:
            ref = urlsplit(referer)
            host = self.headers.get("Host", "")
            here_host, _, here_port = host.partition(":")
            norm = lambda h: "localhost" if h in ("127.0.0.1", "localhost") else h  # noqa: E731
            if not ref.hostname or norm(ref.hostname) != norm(here_host) or \
                    str(ref.port or 80) != (here_port or "80"):
                raise _Halt(403, b"")
        if user is not None and perm is not None and \
                not self.riak.security.allowed(user, perm, btype, bucket):
            raise _Halt(403, permission_denied(user, perm, btype, bucket))


def permission_denied(user: str, perm: str, btype: str, bucket: str | None) -> str:
    """Riak's text for a missing grant (the same over HTTP and PB)."""
    target = btype if bucket is None else (bucket if btype == "default" else f"{btype}/{bucket}")
    return f"Permission denied: User '{user}' does not have '{perm}' on {target}"


TRANSCRIPT_USERS = ("riaktq:s3cret-pw", "reader:r3ad-only:riak_kv.get,riak_kv.index")


def _parse_users(specs) -> Security:
    security = Security()
    for spec in specs or TRANSCRIPT_USERS:
        name, _, rest = spec.partition(":")
        password, _, perms = rest.partition(":")
        security.add_user(name, password, perms.split(",") if perms else Security.ALL)
    return security


def _make_tls_files(host: str, directory: str) -> ssl.SSLContext:
    """A CA and a server certificate for ``host``, written to ``directory``
    (ca.pem for clients; server.pem holds the key and chain)."""
    import os

    import trustme
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(host, "localhost")
    ca.cert_pem.write_to_path(os.path.join(directory, "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(directory, "server.pem"))
    return server_tls_context(os.path.join(directory, "server.pem"))
