"""HTTP/2 end to end: h2c with prior knowledge (curl, h2load, httpx, a raw h2 client),
per-stream balancing, translation to and from HTTP/1.1 backends, flow control, limits
and attacks (rapid reset, CONTINUATION flood), GOAWAY when draining."""

from __future__ import annotations

import asyncio
import collections
import shutil
import socket
from collections.abc import AsyncIterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from hyperframe.frame import ContinuationFrame, HeadersFrame
from tests.l7.conftest import IO_TIMEOUT, Lab, config_from, gateway_docs, next_address, service_docs

from seaway.dataplane.http.h2_downstream import MAX_CONCURRENT_STREAMS, RAPID_RESET_LIMIT
from seaway.http1 import HTTPServer, Request, Response

ROUTE = {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}
BIG = 1024 * 1024


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def _gateway(lab: Lab, services: list[dict[str, Any]]) -> tuple[str, int]:
    address = next_address()
    port = _free_port(address)
    result = await lab.plane.apply(config_from([*services, *gateway_docs(port, address, [ROUTE])]))
    assert not result.errors
    return address, port


@pytest.fixture
async def big_backend() -> AsyncIterator[int]:
    """``GET /big``: 1 MiB; anything else: the request's fields and body size."""

    async def handle(request: Request) -> Response:
        if request.path == "/big":
            return Response(200, (("Content-Type", "application/octet-stream"),), b"x" * BIG)
        lines = [f"{request.method} {request.target} body={len(request.body)}"]
        lines += [f"{name.lower()}: {value}" for name, value in request.headers]
        return Response.text(200, "\n".join(lines) + "\n")

    server = HTTPServer(handle)
    await server.start("127.0.0.1:0")
    try:
        yield int(server.bound_address.rsplit(":", 1)[1])
    finally:
        await server.close()


class RawH2:
    """A minimal HTTP/2 client on the h2 library, for what httpx will not do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 window: int = 65535) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []

    @classmethod
    async def open(cls, address: str, port: int, window: int = 65535) -> RawH2:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), IO_TIMEOUT)
        client = cls(reader, writer, window)
        client.flush()
        return client

    def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())

    async def read(self, limit: float = IO_TIMEOUT) -> bool:
        """Read once (at most ``limit`` s); False at EOF."""
        data = await asyncio.wait_for(self.reader.read(65536), limit)
        if not data:
            return False
        self.events += self.conn.receive_data(data)
        self.flush()
        return True

    async def until(self, predicate: Any, limit: float = IO_TIMEOUT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not predicate():
            if not await self.read(max(0.01, deadline - loop.time())):
                return

    def request(self, authority: str, path: str = "/", end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream_id,
            [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)],
            end_stream=end,
        )
        self.flush()
        return stream_id

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def close(self) -> None:
        self.writer.close()


async def _run(*args: str, limit: float = 20) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode()


async def test_h2c_prior_knowledge_spreads_streams_of_one_connection(lab: Lab) -> None:
    ports = [await lab.backend(n) for n in "abc"]
    address, port = await _gateway(lab, service_docs("web", ports))
    async with httpx.AsyncClient(http1=False, http2=True, timeout=IO_TIMEOUT) as client:
        names = collections.Counter(
            [(await client.get(f"http://{address}:{port}/")).text for _ in range(30)]
        )
        versions = {(await client.get(f"http://{address}:{port}/")).http_version}
    assert names == {"a": 10, "b": 10, "c": 10}
    assert versions == {"HTTP/2"}
    assert len(lab.plane.connections()) <= 1  # one client connection carried them all

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    code, out = await _run(
        "curl", "-sS", "--http2-prior-knowledge", "--max-time", "5",
        "-w", " %{http_version}", f"http://{address}:{port}/"
    )
    assert code == 0 and out.endswith(" 2"), out


async def test_h2load_completes_without_errors(lab: Lab) -> None:
    if shutil.which("h2load") is None:
        pytest.skip("h2load is not installed (Debian package nghttp2-client)")
    ports = [await lab.backend(n) for n in "ab"]
    address, port = await _gateway(lab, service_docs("web", ports))
    code, out = await _run(
        "h2load", "-n", "2000", "-c", "10", "-m", "10", f"http://{address}:{port}/", limit=25
    )
    assert code == 0, out
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 2000 2xx" in out, out


async def test_translation_h1_to_h2_backend_and_h2_to_h1(lab: Lab, big_backend: int) -> None:
    # Listener B (h2c-capable) serves the HTTP/1.1 backend; listener A reaches B over
    # HTTP/2 (the Service says appProtocol kubernetes.io/h2c). Both legs translate.
    inner_address = next_address()
    inner_port = _free_port(inner_address)
    outer_address = next_address()
    outer_port = _free_port(outer_address)
    inner_service = service_docs("web", [big_backend])
    h2_service = service_docs("front", [inner_port])
    h2_service[0]["spec"]["ports"][0]["appProtocol"] = "kubernetes.io/h2c"
    h2_service[1]["endpoints"][0]["addresses"] = [inner_address]
    docs = [
        *inner_service,
        *h2_service,
        *gateway_docs(inner_port, inner_address, [ROUTE]),
    ]
    outer = gateway_docs(outer_port, outer_address, [
        {"rules": [{"backendRefs": [{"name": "front", "port": 80}]}]}
    ])
    outer[1]["metadata"]["name"] = "outer"
    outer[2]["metadata"]["name"] = "outer-route"
    outer[2]["spec"]["parentRefs"] = [{"name": "outer"}]
    config = config_from([*docs, outer[1], outer[2]])
    assert config.http_backend_sets["default/front:80/TCP"].upstream_protocol == "h2c"
    assert not (await lab.plane.apply(config)).errors
    url = f"http://{outer_address}:{outer_port}"
    async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:  # HTTP/1.1 in
        posted = await client.post(f"{url}/up?q=1", content=b"y" * 300_000,
                                   headers={"Host": "app.test", "Cookie": "a=1"})
        big = await client.get(f"{url}/big", headers={"Host": "app.test"})
    assert posted.http_version == "HTTP/1.1" and posted.status_code == 200
    assert "POST /up?q=1 body=300000" in posted.text
    assert "host: app.test" in posted.text and "cookie: a=1" in posted.text
    assert big.content == b"x" * BIG
    assert lab.plane.h2_upstream_connections() >= 1
    async def parts() -> AsyncIterator[bytes]:  # no length: chunked to the HTTP/1.1 backend
        yield b"ab"
        yield b"cd"

    async with httpx.AsyncClient(http1=False, http2=True, timeout=IO_TIMEOUT) as client:
        chunked = await client.post(f"{url}/c", content=parts())
    assert chunked.http_version == "HTTP/2" and "body=4" in chunked.text


async def test_flow_control_sends_only_what_the_window_allows(lab: Lab, big_backend: int) -> None:
    address, port = await _gateway(lab, service_docs("web", [big_backend]))
    client = await RawH2.open(address, port, window=65535)
    try:
        stream_id = client.request(f"{address}:{port}", "/big")

        def got() -> int:
            return sum(len(e.data) for e in client.of(h2.events.DataReceived))

        await client.until(lambda: got() >= 65535, limit=3)
        with pytest.raises(TimeoutError):
            await client.until(lambda: got() > 65535, limit=0.5)
        assert got() == 65535  # not a byte beyond the window
        acknowledged = 0
        while not client.of(h2.events.StreamEnded):
            fresh = got() - acknowledged
            if fresh:
                client.conn.acknowledge_received_data(fresh, stream_id)
                client.flush()
                acknowledged += fresh
            await client.read()
        assert got() == BIG
    finally:
        client.close()


async def test_settings_limits_and_rapid_reset_gets_goaway(lab: Lab) -> None:
    ports = [await lab.backend("a")]
    address, port = await _gateway(lab, service_docs("web", ports))
    client = await RawH2.open(address, port)
    try:
        await client.until(lambda: client.of(h2.events.RemoteSettingsChanged))
        remote = client.conn.remote_settings
        assert remote.max_concurrent_streams == MAX_CONCURRENT_STREAMS
        assert remote.max_header_list_size == 16 * 1024
        for _ in range(RAPID_RESET_LIMIT + 50):
            stream_id = client.request(f"{address}:{port}", "/", end=False)
            client.conn.reset_stream(stream_id)
            client.flush()
        await client.until(lambda: client.of(h2.events.ConnectionTerminated))
        ended = client.of(h2.events.ConnectionTerminated)
        assert ended and ended[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        client.close()


async def test_continuation_flood_closes_the_connection(lab: Lab) -> None:
    address, port = await _gateway(lab, service_docs("web", [await lab.backend("a")]))
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), IO_TIMEOUT)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        headers = HeadersFrame(1)
        headers.data = conn.encoder.encode(
            [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/")]
        )
        frames = [headers.serialize()]
        for _ in range(200):  # never END_HEADERS
            continuation = ContinuationFrame(1)
            continuation.data = b"\x00" * 100
            frames.append(continuation.serialize())
        writer.write(b"".join(frames))
        data = b""
        while True:  # the server answers with GOAWAY and closes
            chunk = await asyncio.wait_for(reader.read(65536), IO_TIMEOUT)
            if not chunk:
                break
            data += chunk
        events = conn.receive_data(data)
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaway and goaway[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        writer.close()


async def test_draining_sends_goaway_and_lets_streams_finish(lab: Lab) -> None:
    gate = asyncio.Event()

    async def slow(request: Request) -> Response:
        await asyncio.wait_for(gate.wait(), IO_TIMEOUT)
        return Response.text(200, "finished")

    server = HTTPServer(slow)
    await server.start("127.0.0.1:0")
    try:
        backend = int(server.bound_address.rsplit(":", 1)[1])
        address, port = await _gateway(lab, service_docs("web", [backend]))
        client = await RawH2.open(address, port)
        try:
            stream_id = client.request(f"{address}:{port}", "/")
            await asyncio.sleep(0.2)
            lab.plane.stop_accepting()
            await client.until(lambda: client.of(h2.events.ConnectionTerminated))
            goaway = client.of(h2.events.ConnectionTerminated)[0]
            assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
            assert goaway.last_stream_id == stream_id
            gate.set()
            client.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
            await client.until(lambda: client.of(h2.events.StreamEnded))
            body = b"".join(e.data for e in client.of(h2.events.DataReceived))
            assert body == b"finished"
            assert await lab.plane.wait_drained(IO_TIMEOUT) == 0
        finally:
            client.close()
    finally:
        await server.close()
