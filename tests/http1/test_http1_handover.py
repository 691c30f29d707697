"""Telling HTTP from other bytes on one port, handing the connection over; addresses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest

from seaway.http1 import (
    ConnectionSet,
    HTTPServerProtocol,
    Request,
    Response,
    looks_like_http,
    parse_host_port,
)
from seaway.http1 import protocol as protocol_module

TIMEOUT = 5.0  # every network await is bounded by this


@pytest.mark.parametrize(
    ("prefix", "verdict"),
    [
        (b"GET / HTTP/1.1\r\n", True),
        (b"POST ", True),
        (b"M-SEARCH * HTTP/1.1", True),
        (b"GE", None),
        (b"", None),
        (b"hello world", False),
        (b"get / HTTP/1.1", False),
        (b"\x16\x03\x01\x02\x00", False),  # a TLS ClientHello
        (b" GET", False),
        (b"-X ", False),
        (b"ABCDEFGHIJKLMNOPQRSTU", False),  # no space within 20 capitals
        (b"ABCDEFGHIJKLMNOPQRST", None),
        (b"HELLO\n", False),
    ],
)
def test_looks_like_http(prefix: bytes, verdict: bool | None) -> None:
    assert looks_like_http(prefix) is verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("::1:80", "brackets"),
        ("127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:99999", "0 to 65535"),
        ("127.0.0.1:http", "0 to 65535"),
        (":80", "host is missing"),
        ("[::1]80", "[IPv6]:PORT"),
    ],
)
def test_parse_host_port_refuses_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_host_port(text)


class Echo(asyncio.Protocol):
    """Echoes bytes, prefixed so that the test can tell who answered."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not inherit asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"echo:" + data)


async def hello(request: Request) -> Response:
    return Response.text(200, f"http {request.path} from {request.client}")


@pytest.fixture
async def sniffing_port() -> AsyncIterator[int]:
    connections = ConnectionSet()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HTTPServerProtocol(
            hello, connections=connections, not_http=Echo, client=("192.0.2.7", 4242)
        ),
        "127.0.0.1",
        0,
    )
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await connections.close_all(0.5)


async def exchange(port: int, *chunks: bytes, pause: float = 0.0) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await asyncio.sleep(pause)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.transport.abort()


async def test_http_request_is_served_as_http(sniffing_port: int) -> None:
    answer = await exchange(
        sniffing_port, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    # The client address given to the protocol (as from a PROXY header) is what handlers see.
    assert answer.endswith(b"http /x from ('192.0.2.7', 4242)")


async def test_request_line_split_over_writes_is_still_http(sniffing_port: int) -> None:
    answer = await exchange(
        sniffing_port, b"GE", b"T /y HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        pause=0.1,
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_other_bytes_go_to_the_other_protocol_with_nothing_lost(sniffing_port: int) -> None:
    answer = await exchange(sniffing_port, b"hello ", b"world", pause=0.1)
    assert answer == b"echo:hello echo:world"


async def test_undecided_prefix_is_handed_over_after_a_while(
    sniffing_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol_module, "UNDECIDED_SECONDS", 0.2)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", sniffing_port), TIMEOUT
    )
    try:
        writer.write(b"ABC")  # could start a method; the client waits for an echo
        assert await asyncio.wait_for(reader.readexactly(8), TIMEOUT) == b"echo:ABC"
    finally:
        writer.transport.abort()
