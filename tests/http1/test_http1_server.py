"""The HTTP/1.1 server with real sockets: httpx, curl and raw bytes, hostile input included."""

from __future__ import annotations

import asyncio
import shutil
import socket
from typing import TYPE_CHECKING

import httpx
import pytest

from seaway.http1 import Limits, Request, Response

if TYPE_CHECKING:
    from conftest import ServerFactory

TIMEOUT = 5.0  # every network await is bounded by this

CURL = shutil.which("curl")


async def test_httpx_get_sees_method_path_query_and_headers(start_server: ServerFactory) -> None:
    live = await start_server(extra_headers=(("X-Always", "yes"),))
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        r = await client.get(f"{live.url}/some/path?a=1&b=two%20words", headers={"X-Test": "v"})
    assert r.status_code == 200
    assert r.headers["x-seen"] == "GET /some/path a=1&b=two%20words 0"
    assert r.headers["x-always"] == "yes"
    request = live.seen[0]
    assert request.header("x-test") == "v"
    assert request.query_value("b") == "two words"
    assert request.version == "1.1"
    assert request.client is not None and request.client[0] == "127.0.0.1"


async def test_post_bodies_with_content_length_and_chunked(start_server: ServerFactory) -> None:
    live = await start_server()

    async def chunks():  # type: ignore[no-untyped-def]
        for part in (b"abc", b"defg", b"h" * 1000):
            yield part

    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        fixed = await client.post(f"{live.url}/echo", content=b"x" * 5000)
        chunked = await client.post(f"{live.url}/echo", content=chunks())
    assert fixed.content == b"x" * 5000
    assert chunked.content == b"abcdefg" + b"h" * 1000
    assert live.seen[1].header("transfer-encoding") == "chunked"


async def test_keep_alive_reuses_one_connection(start_server: ServerFactory) -> None:
    live = await start_server()
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for i in range(5):
            r = await client.get(f"{live.url}/n{i}")
            assert r.status_code == 200
    ports = {request.client[1] for request in live.seen if request.client}
    assert len(live.seen) == 5
    assert len(ports) == 1  # one client port: the same connection every time


async def test_pipelined_responses_come_in_request_order(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    # The first request is the slowest: a server answering as handlers finish would
    # reorder them.
    await conn.send(
        b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /sleep?s=0.1 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /third HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    )
    first, second, third = [await conn.response() for _ in range(3)]
    assert first.headers["x-seen"] == "GET /sleep s=0.3 0"
    assert second.headers["x-seen"] == "GET /sleep s=0.1 0"
    assert third.body == b"hello"


async def test_many_pipelined_requests_pause_reading_and_all_get_answers(
    start_server: ServerFactory,
) -> None:
    live = await start_server(limits=Limits(max_pipelined=4))
    conn = await live.connect()
    await conn.send(b"".join(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(100)))
    for i in range(100):
        response = await conn.response()
        assert response.headers["x-seen"] == f"GET /r{i}  0"


async def test_connection_close_is_honoured(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    response = await conn.response()
    assert response.headers["connection"] == "close"
    assert await conn.read_to_eof() == b""


async def test_http10_closes_unless_keep_alive_asked(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET /old HTTP/1.0\r\n\r\n")
    response = await conn.response()
    assert response.head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert await conn.read_to_eof() == b""

    conn = await live.connect()
    await conn.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert (await conn.response()).headers["connection"] == "keep-alive"
    await conn.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert (await conn.response()).headers["x-seen"] == "GET /b  0"


async def test_head_response_has_length_but_no_body(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /y HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert b"Content-Length: 10\r\n" in head  # len("HEAD /x  0")
    # The next bytes are the second response, not a body for the first.
    second = await conn.response()
    assert second.body == b"GET /y  0"


async def test_half_closing_client_still_gets_its_answer(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
    conn.writer.write_eof()
    response = await conn.response()
    assert response.body == b"GET /late  0"
    assert await conn.read_to_eof() == b""


async def test_handler_exception_is_500_and_connection_survives(
    start_server: ServerFactory,
) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await conn.response()).status == 500
    assert (await conn.response()).status == 200


async def test_expect_100_continue(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    interim = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    await conn.send(b"data")
    assert (await conn.response()).body == b"data"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n", 400, id="no-colon"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="no-host"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="two-hosts"),
        pytest.param(b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n", 400, id="bad-method"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n", 400, id="nul-in-value"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
            400,
            id="two-lengths",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            id="smuggling-cl-te",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
            id="bad-chunk-size",
        ),
        pytest.param(b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 400, id="version"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"a" * 17000 + b"\r\n\r\n", 431,
            id="header-too-large",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 2500 + b"\r\n", 431,
            id="too-many-headers",
        ),
        pytest.param(b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, id="long-url"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n", 413,
            id="length-too-large",
        ),
    ],
)
async def test_hostile_requests_are_refused_and_closed(
    start_server: ServerFactory, raw: bytes, status: int
) -> None:
    live = await start_server()
    conn = await live.connect()
    # A good request first: its answer must still come, before the refusal.
    await conn.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n" + raw)
    assert (await conn.response()).status == 200
    refusal = await conn.response()
    assert refusal.status == status, refusal.body
    assert refusal.headers["connection"] == "close"
    assert await conn.read_to_eof() == b""
    assert [r.path for r in live.seen] == ["/first"]


async def test_version_not_1x_is_505_or_400(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n")
    assert (await conn.response()).status in (400, 505)


async def test_chunked_body_over_the_limit_is_413(start_server: ServerFactory) -> None:
    live = await start_server(limits=Limits(max_body_bytes=1000))
    conn = await live.connect()
    await conn.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(3):
        await conn.send(b"200\r\n" + b"z" * 0x200 + b"\r\n")
    assert (await conn.response()).status == 413
    assert live.seen == []


async def test_httpx_posting_too_much_gets_413(start_server: ServerFactory) -> None:
    live = await start_server()
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        r = await client.post(f"{live.url}/big", content=b"b" * (2 * 1024 * 1024))
    assert r.status_code == 413
    assert live.seen == []


async def test_slow_header_gets_408(start_server: ServerFactory) -> None:
    live = await start_server(limits=Limits(header_timeout=0.3))
    conn = await live.connect()
    await conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # never finished
    response = await conn.response()
    assert response.status == 408
    assert await conn.read_to_eof() == b""


async def test_silent_new_connection_gets_408(start_server: ServerFactory) -> None:
    live = await start_server(limits=Limits(header_timeout=0.3))
    conn = await live.connect()
    assert (await conn.response()).status == 408


async def test_trickled_header_times_out_from_first_byte(start_server: ServerFactory) -> None:
    """A slowloris client sends a byte now and then: the deadline does not move."""
    live = await start_server(limits=Limits(header_timeout=0.5, idle_timeout=5))
    conn = await live.connect()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def trickle() -> None:
        for byte in b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            await conn.send(bytes([byte]))
            await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    try:
        response = await conn.response()
    finally:
        trickling.cancel()
        await asyncio.gather(trickling, return_exceptions=True)
    assert response.status == 408
    # 0.5 s after the first byte; trickling all bytes would take 6 s.
    assert 0.4 < loop.time() - started < 3.0


async def test_idle_keep_alive_connection_is_closed_silently(start_server: ServerFactory) -> None:
    live = await start_server(limits=Limits(idle_timeout=0.3))
    conn = await live.connect()
    await conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await conn.response()).status == 200
    assert await conn.read_to_eof() == b""  # closed, no 408 written


async def test_stalled_body_times_out(start_server: ServerFactory) -> None:
    live = await start_server(limits=Limits(idle_timeout=0.3))
    conn = await live.connect()
    await conn.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
    assert (await conn.response()).status == 408


async def test_response_header_injection_becomes_500(start_server: ServerFactory) -> None:
    async def evil(request: Request) -> Response:
        return Response(200, (("X-A", "b\r\nSet-Cookie: x=y"),), b"")

    live = await start_server(evil)
    conn = await live.connect()
    await conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    response = await conn.response()
    assert response.status == 500
    assert b"Set-Cookie" not in response.head


async def test_server_close_closes_idle_keep_alive_connections(
    start_server: ServerFactory,
) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await conn.response()
    assert live.server.connection_count == 1
    await live.server.close()
    assert await conn.read_to_eof() == b""
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(live.host, live.port), TIMEOUT)


async def test_server_close_lets_the_running_request_finish(start_server: ServerFactory) -> None:
    live = await start_server()
    conn = await live.connect()
    await conn.send(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.sleep(0.1)
    closing = asyncio.create_task(live.server.close(grace=3.0))
    try:
        response = await conn.response()
        assert response.status == 200
        assert response.headers["connection"] == "close"
        assert await conn.read_to_eof() == b""  # the server's FIN after the response
        conn.writer.close()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(asyncio.shield(closing), TIMEOUT)
        # Done when the client went away, not at the end of the grace period.
        assert asyncio.get_running_loop().time() - started < 2.0
    finally:
        await asyncio.wait_for(closing, TIMEOUT)


async def test_ipv6_loopback(start_server: ServerFactory) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    from seaway.http1 import HTTPServer  # noqa: PLC0415

    async def hello(request: Request) -> Response:
        return Response.text(200, f"hi {request.client}")

    server = HTTPServer(hello)
    try:
        await server.start("[::1]:0")
    except OSError:
        pytest.skip("::1 is not configured")
    try:
        assert server.bound_address.startswith("[::1]:")
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.get(f"http://{server.bound_address}/")
        assert r.text.startswith("hi ('::1', ")
    finally:
        await server.close()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
async def test_curl_reuses_the_connection_and_posts(start_server: ServerFactory) -> None:
    assert CURL is not None
    live = await start_server()
    proc = await asyncio.create_subprocess_exec(
        CURL, "-sS", "--max-time", "5", "-w", "|%{num_connects}\\n",
        f"{live.url}/one", f"{live.url}/two",
        "--next", "-sS", "-w", "|%{num_connects}\\n", "--data-binary", "payload",
        f"{live.url}/three",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[0] == "GET /one  0|1"
    assert lines[1] == "GET /two  0|0"  # no new connection: kept alive
    assert lines[2] == "payload|0"
