"""What talking to a Riak node with security enabled takes: TLS, credentials
and never showing the secret.

Why a module of its own: the rules here are few but must hold everywhere the
client reaches a node, and a mistake leaks a password or trusts a stranger.

* A node with security on accepts requests only over TLS and only with a
  user's credentials (HTTP basic auth, or a client certificate for Riak's
  ``certificate`` source).  Riak 3.2 speaks TLS 1.2 only, so 1.2 must stay
  allowed; verification against the configured CA (or the system's) is on
  unless the operator turns it off, and then loudly.
* The password lives in a ``Secret``: its str() and repr() are ``***``, so a
  log line, an exception text or a debug dump of the settings cannot show
  it; only ``reveal()`` gives it, and only the Authorization header asks.
* Node URLs are shown without userinfo (``redact_url``); URLs that carry
  credentials are refused before anything uses them (see transport.py).
"""

from __future__ import annotations

import base64
import socket
import ssl
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Secret", "TlsSettings", "TlsReport", "basic_auth", "make_ssl_context",
           "redact_url", "tls_probe"]


class Secret:
    """A password that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def basic_auth(username: str, password: Secret) -> str:
    """The value of an ``Authorization: Basic`` header."""
    raw = f"{username}:{password.reveal()}".encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def redact_url(url: str) -> str:
    """``https://user:pw@host:8443`` -> ``https://host:8443``: URLs as shown."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@dataclass(frozen=True)
class TlsSettings:
    """How to check a node's certificate and which one to present.

    ``ca_file``: PEM bundle of the CAs to trust, and the only ones (None:
    the system's).
    ``cert_file``/``key_file``: a client certificate (Riak's certificate
    source); the key may sit in the certificate file.  ``verify=False``
    accepts any certificate -- for a first try only, never in production.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True


def make_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """The client context for every HTTPS node.

    Raises ValueError with one line naming the file when a CA, certificate
    or key cannot be loaded (missing, unreadable, not PEM, key not matching).
    """
    # PROTOCOL_TLS_CLIENT: certificate and host name checked. Riak 3.2
    # offers TLS 1.2 only; older versions are unsafe.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca_file:
        # Only the configured CA: a cluster's private CA is what vouches for
        # its nodes (and loading the system's store costs every command ~50ms).
        try:
            ctx.load_verify_locations(cafile=tls.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"ca_file {tls.ca_file}: cannot load it ({_why(exc)})") from None
    elif tls.verify:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if tls.cert_file:
        try:
            ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            what = f"cert_file {tls.cert_file}" + (f" / key_file {tls.key_file}" if tls.key_file else "")
            raise ValueError(f"{what}: cannot load it ({_why(exc)})") from None
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a valid PEM file"
    return getattr(exc, "strerror", None) or type(exc).__name__


@dataclass
class TlsReport:
    """What one TLS handshake with a node showed, for ``riaktq check``."""

    protocol: str | None = None       # "TLSv1.2"
    verified: bool = False            # the chain and host name were checked and good
    subject: str | None = None        # "CN=riak1.example, O=..."
    not_after: str | None = None      # "Mar  1 12:00:00 2027 GMT"
    error: str | None = None          # why the handshake failed


def tls_probe(url: str, ctx: ssl.SSLContext, timeout: float,
              before_tls: Callable[[socket.socket], None] | None = None) -> TlsReport:
    """One handshake with the node at ``url``, to report on its TLS.

    ``before_tls`` runs on the plain socket first (PB asks for TLS with RpbStartTls).

    With verification off the peer certificate is not parsed (the standard
    library only decodes verified certificates), so subject and expiry stay
    unknown: ``check`` says so instead of guessing.
    """
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    report = TlsReport()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if before_tls is not None:
                before_tls(raw)
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                report.protocol = tls.version()
                report.verified = ctx.verify_mode == ssl.CERT_REQUIRED
                cert = tls.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        report.error = exc.verify_message or "certificate verify failed"
        return report
    except (OSError, ssl.SSLError) as exc:
        report.error = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        return report
    names = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}
    report.subject = ", ".join(
        f"{names.get(k, k)}={v}" for rdn in cert.get("subject", ()) for k, v in rdn) or None
    if not report.subject and cert.get("subjectAltName"):
        report.subject = ", ".join(f"{k}:{v}" for k, v in cert["subjectAltName"])
    report.not_after = cert.get("notAfter")
    return report
