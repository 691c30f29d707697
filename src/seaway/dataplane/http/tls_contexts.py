"""TLS server contexts of one HTTPS listener: SNI picks the certificate, swapped in place.

The listening socket keeps one front ``SSLContext`` for its whole life; its SNI
callback hands each new handshake the context of the certificate the core's
``ListenerTls.choose`` picks. ``update`` builds the new contexts first and then swaps
them in one assignment: handshakes that follow use the new certificates, connections
already established keep theirs and are never dropped.

Every context: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key exchange with AEAD
ciphers (forward secrecy, Mozilla's "intermediate" profile); no compression (CRIME),
no renegotiation; ALPN offers h2 then http/1.1 (RFC 7301, RFC 9113 section 3.2).
"""

from __future__ import annotations

import ssl

from seaway.core.tls import ListenerTls, TlsCertificate
from seaway.model.secrets import load_key_pair

# ALPN protocol identifiers (RFC 7301; "h2" from RFC 9113 section 3.2).
ALPN_H2 = "h2"
ALPN_HTTP1 = "http/1.1"
ALPN_PROTOCOLS = (ALPN_H2, ALPN_HTTP1)
# TLS 1.2 cipher suites: ECDHE with AES-GCM or ChaCha20-Poly1305 only (RFC 9113
# section 9.2.2 forbids the others for h2). TLS 1.3 suites are all AEAD already.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def new_server_context() -> ssl.SSLContext:
    """A server context with seaway's protocol versions, ciphers, options and ALPN."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context


def certificate_context(cert: TlsCertificate) -> ssl.SSLContext:
    """A server context serving ``cert`` (raises ``KeyPairError`` when it cannot)."""
    context = new_server_context()
    load_key_pair(context, cert.certificate, cert.private_key)
    return context


class TlsContexts:
    """The front context of one listener and the per-certificate contexts it switches to."""

    def __init__(self, tls: ListenerTls) -> None:
        self.front = new_server_context()
        self.front.sni_callback = self._on_server_name
        self._tls = ListenerTls()
        self._contexts: dict[TlsCertificate, ssl.SSLContext] = {}
        self.update(tls)

    def update(self, tls: ListenerTls) -> None:
        """Serve ``tls`` from the next handshake on (contexts are built before the swap)."""
        contexts = {
            cert: self._contexts.get(cert) or certificate_context(cert)
            for cert in tls.certificates()
        }
        default = tls.choose(None)
        if default is not None:
            # Also the front context's own certificate, should a handshake not switch.
            load_key_pair(self.front, default.certificate, default.private_key)
        self._tls, self._contexts = tls, contexts

    def context_for(self, server_name: str | None) -> ssl.SSLContext | None:
        cert = self._tls.choose(server_name)
        return self._contexts.get(cert) if cert is not None else None

    def _on_server_name(
        self, ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        context = self.context_for(server_name)
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ssl_object.context = context
        return None
