"""An HTTP/1.1 server on one listen address, for small built-in endpoints."""

from __future__ import annotations

import asyncio
import contextlib

from seaway.http1.address import format_sockname, parse_host_port
from seaway.http1.connections import ConnectionSet
from seaway.http1.limits import Limits
from seaway.http1.message import Handler
from seaway.http1.protocol import HTTPServerProtocol


class HTTPServer:
    """Serves ``handler`` on one address (owns the listening socket and its connections)."""

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Limits | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._handler = handler
        self._extra_headers = extra_headers
        self._limits = limits or Limits()
        self._connections = ConnectionSet()
        self._server: asyncio.Server | None = None

    async def start(self, address: str) -> None:
        """Listen on ``host:port`` or ``[v6]:port`` (port 0: the kernel picks one).

        Raises ValueError for a malformed address and OSError when it cannot be bound.
        """
        host, port = parse_host_port(address)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, host, port, reuse_address=True
        )

    def _new_connection(self) -> HTTPServerProtocol:
        return HTTPServerProtocol(
            self._handler,
            limits=self._limits,
            connections=self._connections,
            extra_headers=self._extra_headers,
        )

    @property
    def bound_address(self) -> str:
        """The first address actually listened on, ``host:port``; the port is the real one."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        return format_sockname(self._server.sockets[0])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def close(self, grace: float = 1.0) -> None:
        """Stop listening; let open connections finish their response for ``grace`` s."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self._connections.close_all(grace)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await server.wait_closed()
