"""Raw TCP and UDP echo, the non-HTTP half of the test backend."""

from __future__ import annotations

import asyncio
from typing import cast

from seaway.backend.proxy_header import strip_datagram_header
from seaway.http1 import ConnectionSet

# The datagram asking a UDP backend for its name instead of an echo (as agnhost's
# UDP "hostname" command).
HOSTNAME_DATAGRAM = b"hostname"


class TCPEchoProtocol(asyncio.Protocol):
    """Writes back every byte it reads; when the client half-closes, finishes and closes.

    Reading pauses while the client does not read its echo (the transport's write
    buffer is full), so a client cannot make the backend buffer without bound.
    """

    def __init__(self, connections: ConnectionSet | None = None) -> None:
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not inherit asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        if self._connections is not None:
            self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def eof_received(self) -> bool | None:
        # Returning false makes the transport close, after it has written what is
        # buffered: the client gets its whole echo, then our FIN.
        return None

    def pause_writing(self) -> None:
        assert self._transport is not None
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connections is not None:
            self._connections.discard(self)
        self._lost.set()

    # Connection (for ConnectionSet)

    def shutdown(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await self._lost.wait()


class UDPEchoProtocol(asyncio.DatagramProtocol):
    """Sends every datagram back to its sender; ``hostname`` is answered with the name.

    A PROXY protocol header at the start of a datagram is removed first (v2 defines
    one per datagram, proxy-protocol.txt section 2.2).
    """

    def __init__(self, name: str) -> None:
        self._name = name.encode()
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: asyncio's own datagram transport does not inherit
        # from DatagramTransport on every Python version.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self._transport is not None
        payload = strip_datagram_header(data)
        if payload is None:
            return  # a malformed PROXY header: drop the datagram, as a proxy would
        answer = self._name if payload == HOSTNAME_DATAGRAM else payload
        self._transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the client went away); nothing to do.
        pass
