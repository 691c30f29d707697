"""The test backend in-process: HTTP endpoints, raw TCP echo, UDP echo, PROXY headers."""

from __future__ import annotations

import asyncio
import shutil
import socket

import httpx
import pytest

from seaway.backend import proxy_header
from seaway.backend.server import BackendServer, serve_backend
from seaway.dataplane.proxy.proxy_protocol import encode_v1, encode_v2, encode_v2_local
from seaway.http1 import protocol as http1_protocol

TIMEOUT = 5.0  # every network await is bounded by this
CURL = shutil.which("curl")


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def open_raw(backend: BackendServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(*split(backend.tcp_address)), TIMEOUT)


async def ask(backend: BackendServer, raw: bytes) -> bytes:
    """Send ``raw``, half-close, and read until the backend closes."""
    reader, writer = await open_raw(backend)
    try:
        writer.write(raw)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.transport.abort()


class UDPClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.answers.put_nowait(data)


async def udp_exchange(address: str, payload: bytes) -> bytes:
    """Send one datagram from a fresh socket; the first datagram back."""
    loop = asyncio.get_running_loop()
    transport, client = await asyncio.wait_for(
        loop.create_datagram_endpoint(UDPClient, remote_addr=split(address)), TIMEOUT
    )
    try:
        transport.sendto(payload)
        return await asyncio.wait_for(client.answers.get(), TIMEOUT)
    finally:
        transport.close()


async def test_hostname_echo_and_backend_header(backend: BackendServer) -> None:
    base = f"http://{backend.tcp_address}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        hostname = await client.get(f"{base}/hostname")
        echo = await client.get(f"{base}/echo", params={"msg": "hi there"})
        posted = await client.post(f"{base}/echo", content=b"\x00body\xff")
        missing = await client.get(f"{base}/nope")
        wrong = await client.delete(f"{base}/hostname")
    assert hostname.text == "pod-a"
    assert echo.text == "hi there"
    assert posted.content == b"\x00body\xff"
    assert missing.status_code == 404
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD"
    for response in (hostname, echo, posted, missing, wrong):
        assert response.headers["x-seaway-backend"] == "pod-a"


async def test_shutdown_is_not_an_endpoint(backend: BackendServer) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        r = await client.post(f"http://{backend.tcp_address}/shutdown")
    assert r.status_code == 404


async def test_clientip_is_the_peer(backend: BackendServer) -> None:
    reader, writer = await open_raw(backend)
    try:
        local = writer.get_extra_info("sockname")
        writer.write(b"GET /clientip HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.transport.abort()
    assert answer.endswith(f"\r\n\r\n127.0.0.1:{local[1]}".encode())


async def test_readiness_and_health_switch(backend: BackendServer) -> None:
    base = f"http://{backend.tcp_address}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.get(f"{base}/readyz")).text == "ok"
        assert (await client.post(f"{base}/readyz/fail")).status_code == 200
        assert (await client.get(f"{base}/readyz")).status_code == 503
        assert (await client.get(f"{base}/healthz")).status_code == 200  # independent
        assert (await client.get(f"{base}/readyz/fail")).status_code == 405  # POST only
        await client.post(f"{base}/readyz/ok")
        assert (await client.get(f"{base}/readyz")).status_code == 200
        await client.post(f"{base}/healthz/fail")
        assert (await client.get(f"{base}/healthz")).status_code == 503
        await client.post(f"{base}/healthz/ok")
        assert (await client.get(f"{base}/healthz")).text == "ok"


async def test_raw_tcp_is_echoed(backend: BackendServer) -> None:
    reader, writer = await open_raw(backend)
    try:
        for message in (b"hello world\n", b"\x00\x01binary", b"lower case get / HTTP/1.1"):
            writer.write(message)
            assert await asyncio.wait_for(reader.readexactly(len(message)), TIMEOUT) == message
    finally:
        writer.transport.abort()


async def test_half_close_gets_the_whole_echo_then_eof(backend: BackendServer) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: more than the socket buffers hold
    reader, writer = await open_raw(backend)

    async def send() -> None:
        for start in range(0, len(payload), 65536):
            writer.write(payload[start : start + 65536])
            await asyncio.wait_for(writer.drain(), TIMEOUT)
        writer.write_eof()

    try:
        sending = asyncio.create_task(send())
        received = await asyncio.wait_for(reader.read(), TIMEOUT)  # until the backend's FIN
        await sending
    finally:
        writer.transport.abort()
    assert received == payload


async def test_udp_echo_and_hostname(backend: BackendServer) -> None:
    assert backend.udp_address == backend.tcp_address  # the same port number
    assert await udp_exchange(backend.tcp_address, b"ping \x00 pong") == b"ping \x00 pong"
    assert await udp_exchange(backend.tcp_address, b"hostname") == b"pod-a"
    assert await udp_exchange(backend.tcp_address, b"hostname\n") == b"hostname\n"  # exact only


async def test_udp_datagram_with_proxy_v2_header_is_echoed_without_it(
    backend: BackendServer,
) -> None:
    header = encode_v2("198.51.100.4", 999, "127.0.0.1", 53, transport="UDP")
    assert await udp_exchange(backend.tcp_address, header + b"query") == b"query"
    assert await udp_exchange(backend.tcp_address, header + b"hostname") == b"pod-a"


@pytest.mark.parametrize(
    ("header", "client"),
    [
        pytest.param(encode_v1("203.0.113.9", 5555, "127.0.0.1", 80), "203.0.113.9:5555", id="v1"),
        pytest.param(encode_v2("203.0.113.9", 5555, "127.0.0.1", 80), "203.0.113.9:5555", id="v2"),
        pytest.param(
            encode_v2("2001:db8::1", 5555, "2001:db8::2", 80), "[2001:db8::1]:5555", id="v2-ipv6"
        ),
        pytest.param(b"PROXY UNKNOWN\r\n", "127.0.0.1:", id="v1-unknown"),
        pytest.param(encode_v2_local(), "127.0.0.1:", id="v2-local"),
    ],
)
async def test_proxy_header_then_clientip(
    backend: BackendServer, header: bytes, client: str
) -> None:
    answer = await ask(
        backend, header + b"GET /clientip HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    body = answer.partition(b"\r\n\r\n")[2].decode()
    assert body.startswith(client)


async def test_proxy_header_then_raw_echo(backend: BackendServer) -> None:
    header = encode_v2("203.0.113.9", 5555, "127.0.0.1", 80)
    assert await ask(backend, header + b"just bytes") == b"just bytes"


async def test_proxy_header_in_pieces(backend: BackendServer) -> None:
    header = encode_v1("203.0.113.9", 5555, "127.0.0.1", 80)
    reader, writer = await open_raw(backend)
    try:
        for piece in (header[:3], header[3:10], header[10:]):
            writer.write(piece)
            await asyncio.sleep(0.05)
        writer.write(b"GET /clientip HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.transport.abort()
    assert answer.endswith(b"203.0.113.9:5555")


async def test_malformed_proxy_header_closes_the_connection(backend: BackendServer) -> None:
    assert await ask(backend, b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\n") == b""


async def test_undecided_first_bytes_become_an_echo(
    backend: BackendServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "P" may start "PROXY " and then "POST ": an echo client sending just that waits
    # for its echo, which comes once both guesses time out.
    monkeypatch.setattr(proxy_header, "UNDECIDED_SECONDS", 0.1)
    monkeypatch.setattr(http1_protocol, "UNDECIDED_SECONDS", 0.1)
    reader, writer = await open_raw(backend)
    try:
        writer.write(b"P")
        assert await asyncio.wait_for(reader.readexactly(1), TIMEOUT) == b"P"
    finally:
        writer.transport.abort()


async def test_hostile_http_gets_400_with_the_backend_header(backend: BackendServer) -> None:
    answer = await ask(backend, b"GET / HTTP/1.1\r\nHost: t\r\nbroken\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nX-Seaway-Backend: pod-a\r\n" in answer


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
async def test_curl_hostname(backend: BackendServer) -> None:
    assert CURL is not None
    proc = await asyncio.create_subprocess_exec(
        CURL, "-sS", "-i", "--max-time", "5", f"http://{backend.tcp_address}/hostname",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    assert b"\r\nX-Seaway-Backend: pod-a\r\n" in out
    assert out.endswith(b"\r\n\r\npod-a")


async def test_ipv6_listen_address() -> None:
    server = BackendServer("six")
    try:
        await server.start("[::1]:0")
    except OSError:
        pytest.skip("::1 is not configured")
    try:
        assert server.tcp_address.startswith("[::1]:")
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.get(f"http://{server.tcp_address}/clientip")
        assert r.text.startswith("[::1]:")
        data = await udp_exchange(server.tcp_address, b"hostname")
        assert data == b"six"
    finally:
        await server.close()


async def test_address_in_use_is_an_error_naming_it(backend: BackendServer) -> None:
    other = BackendServer("other")
    with pytest.raises(OSError, match=f"cannot listen on {backend.tcp_address} "):
        await other.start(backend.tcp_address)
    await other.close()


async def test_close_ends_open_connections(backend: BackendServer) -> None:
    reader, writer = await open_raw(backend)
    try:
        writer.write(b"echo me")
        await asyncio.wait_for(reader.readexactly(7), TIMEOUT)
        assert backend.connection_count == 1
        await backend.close()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        writer.transport.abort()


async def test_serve_backend_stops_when_cancelled() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = asyncio.create_task(serve_backend(f"127.0.0.1:{port}", "cancel-me", udp=False))
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), TIMEOUT
                )
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.transport.abort()
            break
        else:
            pytest.fail("serve_backend never listened")
    finally:
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), TIMEOUT)
    assert task.cancelled()
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
