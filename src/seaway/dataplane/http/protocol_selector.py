"""Which HTTP version a new client connection speaks, decided before any request.

On a TLS listener, ALPN decided during the handshake: "h2" is HTTP/2, anything else
(http/1.1, or no ALPN) HTTP/1.1 (RFC 9113 section 3.2). On a cleartext listener, a
client with prior knowledge starts with the HTTP/2 connection preface (RFC 9113
section 3.3); any other first bytes are an HTTP/1.x request. The selector then hands
the transport, and the bytes it read, to the connection class of that version.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, cast

from seaway.dataplane.http.h2_downstream import PREFACE, H2ClientConnection
from seaway.dataplane.http.tls_contexts import ALPN_H2

if TYPE_CHECKING:
    from seaway.dataplane.http.downstream import HttpServer


class ProtocolSelector(asyncio.Protocol):
    """The first protocol of every accepted connection; replaced once the version is known."""

    def __init__(self, server: HttpServer, *, tls: bool) -> None:
        self.server = server
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.tls:
            ssl_object = transport.get_extra_info("ssl_object")
            alpn = None
            if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
                alpn = ssl_object.selected_alpn_protocol()
            self._switch(alpn == ALPN_H2, b"")
            return
        loop = self.server.runtime.loop
        delay = self.server.runtime.settings.http.header_timeout_seconds
        self.timer = loop.call_later(delay, self.transport.close)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        n = min(len(self.buffer), len(PREFACE))
        if self.buffer[:n] != PREFACE[:n]:
            self._switch(False, self.buffer)
        elif len(self.buffer) >= len(PREFACE):
            self._switch(True, self.buffer)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _switch(self, http2: bool, data: bytes) -> None:
        from seaway.dataplane.http.downstream import ClientConnection  # noqa: PLC0415

        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        transport = self.transport
        assert transport is not None
        scheme = "https" if self.tls else "http"
        protocol: asyncio.Protocol
        if http2:
            protocol = H2ClientConnection(self.server, scheme)
        else:
            protocol = ClientConnection(self.server)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if data and not transport.is_closing():
            protocol.data_received(data)
