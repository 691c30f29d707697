"""Fixtures for the HTTP/1.1 server tests: a live server on loopback and a raw client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import uvloop

from seaway.http1 import HTTPServer, Limits, Request, Response

TIMEOUT = 5.0  # every network await in these tests is bounded by this


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test here runs on asyncio's own loop and on uvloop (seaway's default):
    their transports differ (uvloop's do not inherit asyncio's classes)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    head: bytes


@dataclass
class RawConnection:
    """A plain TCP client speaking bytes; responses are parsed just enough to check them."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def response(self) -> RawResponse:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        return RawResponse(status, headers, body, head)

    async def read_to_eof(self) -> bytes:
        return await asyncio.wait_for(self.reader.read(), TIMEOUT)

    def close(self) -> None:
        self.writer.transport.abort()


@dataclass
class LiveServer:
    server: HTTPServer
    address: str
    host: str
    port: int
    seen: list[Request] = field(default_factory=list)
    opened: list[RawConnection] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def connect(self) -> RawConnection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), TIMEOUT
        )
        conn = RawConnection(reader, writer)
        self.opened.append(conn)
        return conn


async def default_handler(request: Request) -> Response:
    """Echoes what it saw; ``/sleep?s=`` waits first, ``/boom`` raises."""
    if request.path == "/boom":
        raise RuntimeError("boom")
    seconds = request.query_value("s")
    if request.path == "/sleep" and seconds:
        await asyncio.sleep(float(seconds))
    text = f"{request.method} {request.path} {request.query} {len(request.body)}"
    return Response(200, (("X-Seen", text),), request.body or text.encode())


ServerFactory = Callable[..., Awaitable[LiveServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start HTTP servers on 127.0.0.1 (port picked by the kernel); all closed at teardown."""
    live: list[LiveServer] = []

    async def start(
        handler: Callable[[Request], Awaitable[Response]] | None = None,
        limits: Limits | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> LiveServer:
        seen: list[Request] = []
        inner = handler or default_handler

        async def recording(request: Request) -> Response:
            seen.append(request)
            return await inner(request)

        server = HTTPServer(recording, limits=limits, extra_headers=extra_headers)
        await server.start("127.0.0.1:0")
        host, _, port = server.bound_address.rpartition(":")
        result = LiveServer(server, server.bound_address, host, int(port), seen)
        live.append(result)
        return result

    try:
        yield start
    finally:
        for item in live:
            for conn in item.opened:
                conn.close()
            await item.server.close(grace=0.5)
