"""The Python floor: the least work any uvloop-based proxy does per connection and byte.

A reference contender, not a product: ``python -m bench.floor_proxy [--parse] HOST
L7PORT L4PORT UPSTREAM_HOST UPSTREAM_PORT`` listens on two ports and relays each
accepted connection, byte for byte, to a new connection to the upstream. It parses
nothing, routes nothing, balances nothing, counts nothing and keeps no timers: a
keep-alive client's requests ride its one upstream connection (as the L7 keep-alive
scenario's pooled upstream does), and every request is one ``data_received`` and one
``write`` per direction — the callbacks and system calls that seaway's L7 proxy cannot
avoid either.

With ``--parse`` (the "floor-parse" contender) each direction is also fed through an
httptools parser whose callbacks collect the request target and every header field
(decoded, as an HTTP proxy must read Host, framing and hop-by-hop fields) and note where
each message ends; the bytes are still relayed unchanged. The difference between the
two is the cost of merely reading HTTP in Python, before any routing, balancing,
header rewriting or bookkeeping.

Measured side by side with seaway and HAProxy (``python -m bench --contenders seaway
haproxy floor``), it answers how much of seaway's gap to HAProxy is seaway's own work
and how much is the cost of a Python event loop, which no Python proxy can remove.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from typing import cast

import httptools
import uvloop

HIGH_WATER = 256 * 1024


class _Leg(asyncio.Protocol):
    """One side of a relayed connection; writes what it reads to its peer."""

    __slots__ = ("peer", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Leg | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)

    def eof_received(self) -> bool:
        # No half-close: the first side to finish ends both (enough for HTTP requests
        # and responses; the benchmark loads never half-close).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        self.transport = None
        self.peer = None
        if peer is not None:
            peer.peer = None
            if peer.transport is not None and not peer.transport.is_closing():
                peer.transport.close()

    # Backpressure: stop reading from the peer while this side cannot take more.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _HeadReader:
    """httptools callbacks that read what a proxy must read of every message."""

    __slots__ = ("fields", "messages", "target")

    def __init__(self) -> None:
        self.target = b""
        self.fields: list[tuple[str, str]] = []
        self.messages = 0

    def on_message_begin(self) -> None:
        self.fields = []

    def on_url(self, url: bytes) -> None:
        self.target = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.messages += 1

    def on_body(self, body: bytes) -> None:
        pass

    def on_message_complete(self) -> None:
        pass


class _ParsingLeg(_Leg):
    """A leg that also parses what it relays (``--parse``)."""

    __slots__ = ("parser",)

    def __init__(self, parser: httptools.HttpRequestParser | httptools.HttpResponseParser) -> None:
        super().__init__()
        self.parser = parser

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        super().data_received(data)


class _Client(_Leg):
    """An accepted connection: connects its upstream leg; what the client sends before
    that is held and sent first."""

    def __init__(self, upstream: tuple[str, int], parse: bool) -> None:
        super().__init__()
        self._upstream = upstream
        self._early: list[bytes] = []
        self._request_parser = httptools.HttpRequestParser(_HeadReader()) if parse else None
        self._parse = parse

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    def data_received(self, data: bytes) -> None:
        if self._request_parser is not None:
            try:
                self._request_parser.feed_data(data)
            except httptools.HttpParserError:
                self._request_parser = None  # not HTTP (the L4 scenarios): relay only
        if self.peer is None:
            self._early.append(data)
        else:
            super().data_received(data)

    def _upstream_leg(self) -> _Leg:
        if self._parse:
            return _ParsingLeg(httptools.HttpResponseParser(_HeadReader()))
        return _Leg()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(self._upstream_leg, *self._upstream)
        except OSError:
            if self.transport is not None:
                self.transport.abort()
            return
        if self.transport is None:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        if self._early and upstream.transport is not None:
            upstream.transport.write(b"".join(self._early))
        self._early = []


async def serve(host: str, ports: list[int], upstream: tuple[str, int], parse: bool) -> None:
    """Relay every port to ``upstream`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    servers = []
    for port in ports:
        server = await loop.create_server(
            lambda: _Client(upstream, parse), host, port, reuse_address=True, backlog=1024
        )
        for sock in server.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        servers.append(server)
    await stop
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    parse = "--parse" in argv
    host, l7, l4, upstream_host, upstream_port = [a for a in argv if a != "--parse"]
    uvloop.run(serve(host, [int(l7), int(l4)], (upstream_host, int(upstream_port)), parse))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
