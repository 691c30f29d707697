"""Who may read the admin API: anyone on loopback, a bearer token holder otherwise.

The admin API listens on loopback by default, where only local users reach it. Bound
to any other address it requires ``Authorization: Bearer <token>`` (RFC 6750 section
2.1), the token read from a file, and refuses to start without one. ``/healthz``,
``/readyz`` and the status page's HTML stay open (kubelet probes send no token, and
the page holds no data: it asks for the token before it reads the state).
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from seaway.http1 import parse_host_port

# Paths served without a token: they reveal nothing about the Services.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/"})
# RFC 6750 section 3: a 401 names the scheme and the realm.
CHALLENGE = 'Bearer realm="seaway"'


class AdminAuthError(ValueError):
    """The admin API would be reachable from other hosts without a token, or the token
    file is unusable."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an IP literal or ``localhost``) only accepts local connections."""
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a host name: it may resolve to anything
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def address_is_loopback(address: str) -> bool | None:
    """Whether the admin address ``host:port`` is a loopback one; None when malformed."""
    try:
        host, _ = parse_host_port(address)
    except ValueError:
        return None
    return is_loopback_host(host)


def read_token_file(path: str | Path) -> str:
    """The token in ``path``: its content without surrounding whitespace, not empty."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AdminAuthError(
            f"cannot read the admin token file {path}: {reason}; "
            "create it with one line of random text (e.g. `openssl rand -hex 32 > FILE`)"
        ) from exc
    if not token:
        raise AdminAuthError(
            f"the admin token file {path} is empty; "
            "put one line of random text in it (e.g. `openssl rand -hex 32 > FILE`)"
        )
    if any(c.isspace() for c in token):
        raise AdminAuthError(
            f"the admin token in {path} contains whitespace; use a single word "
            "(e.g. `openssl rand -hex 32 > FILE`)"
        )
    return token


class BearerAuth:
    """Checks ``Authorization`` header values against one token (constant time)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def allows(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        # RFC 9110 section 11.1: the scheme is case-insensitive.
        given = f"Bearer {credentials.strip()}".encode() if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(given, self._expected)
