"""TLS termination as the core decides it: which certificate answers which server name (pure).

A TLS listener holds certificates keyed by the names they serve: exact host names
(``www.example.com``), wildcards (``*.example.com``, matching exactly one more label,
RFC 6125 section 6.4.3) and a default (``""``). ``choose`` picks for a client's SNI
name: the exact name, then the wildcard, then the default; when there is no default,
the first certificate, so that a client without SNI still completes a handshake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class TlsCertificate:
    """A key pair from a TLS Secret (``namespace/name``); PEM, never shown in a repr."""

    secret: str
    certificate: bytes = field(repr=False)
    private_key: bytes = field(repr=False)


def _empty() -> Mapping[str, TlsCertificate]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ListenerTls:
    """The certificates of one TLS listener, by the server name they answer ("" default)."""

    by_name: Mapping[str, TlsCertificate] = field(default_factory=_empty)

    def certificates(self) -> tuple[TlsCertificate, ...]:
        """Each distinct certificate once, in name order."""
        seen: dict[str, TlsCertificate] = {}
        for name in sorted(self.by_name):
            cert = self.by_name[name]
            seen.setdefault(cert.secret, cert)
        return tuple(seen.values())

    def choose(self, server_name: str | None) -> TlsCertificate | None:
        """The certificate for a client's SNI name (None: no certificate at all)."""
        if server_name:
            name = server_name.rstrip(".").lower()
            exact = self.by_name.get(name)
            if exact is not None:
                return exact
            _, dot, parent = name.partition(".")
            if dot:
                wildcard = self.by_name.get(f"*.{parent}")
                if wildcard is not None:
                    return wildcard
        default = self.by_name.get("")
        if default is not None:
            return default
        for name in sorted(self.by_name):
            return self.by_name[name]
        return None


def listener_tls(entries: list[tuple[str, TlsCertificate]]) -> ListenerTls:
    """A ``ListenerTls`` from (name, certificate) pairs; the first pair for a name wins."""
    by_name: dict[str, TlsCertificate] = {}
    for name, cert in entries:
        by_name.setdefault(name.lower(), cert)
    return ListenerTls(MappingProxyType(dict(sorted(by_name.items()))))
