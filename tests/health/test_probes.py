"""Active probes and their scheduler against real sockets on loopback."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from seaway.core.config import HealthCheck
from seaway.core.health import HealthEvent, ProbeTarget
from seaway.health.probes import probe
from seaway.health.scheduler import HealthCheckScheduler
from seaway.testing.processes import free_port

IO_TIMEOUT = 5.0


class Server:
    """A TCP server whose answer a test chooses; counts connections open at once."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer  # None: accept and never answer
        self.open = 0
        self.most_open = 0
        self.accepted = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.accepted += 1
        self.most_open = max(self.most_open, self.open)
        try:
            if self.answer is None:
                await reader.read()  # until the prober gives up and closes
                return
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.answer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[bytes | None], asyncio.Future[Server]]]:
    servers: list[Server] = []

    async def start(answer: bytes | None) -> Server:
        server = Server(answer)
        server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in servers:
        assert server.server is not None
        server.server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and "handle" in repr(task.get_coro()):
                task.cancel()


HTTP = HealthCheck(protocol="http", path="/ready", timeout=0.5, interval=0.1)
TCP = HealthCheck(protocol="tcp", timeout=0.5, interval=0.1)


async def test_tcp_probe_passes_when_the_port_accepts(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(b"")
    assert (await probe("127.0.0.1", server.port, TCP)).passed


async def test_tcp_probe_fails_when_refused() -> None:
    result = await probe("127.0.0.1", free_port(), TCP)
    assert not result.passed and "refused" in result.detail.lower()


@pytest.mark.parametrize(
    ("answer", "passed", "detail"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True, "HTTP 200"),
        (b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", True, "HTTP 302"),
        (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", False, "HTTP 503"),
        (b"HTTP/1.0 404 Not Found\r\n\r\n", False, "HTTP 404"),
        (b"SSH-2.0-OpenSSH\r\n", False, "not an HTTP response"),
        (b"", False, "connection closed before a status line"),
    ],
)
async def test_http_probe_reads_the_status(
    serve: Callable[..., asyncio.Future[Server]], answer: bytes, passed: bool, detail: str
) -> None:
    server = await serve(answer)
    result = await probe("127.0.0.1", server.port, HTTP)
    assert (result.passed, result.detail.startswith(detail)) == (passed, True), result
    assert server.requests[0].startswith(b"GET /ready HTTP/1.1\r\n")
    assert b"\r\nConnection: close\r\n" in server.requests[0]


async def test_expected_statuses_decide(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    only_200 = HealthCheck(protocol="http", timeout=0.5, expected_statuses=((200, 200),))
    assert not (await probe("127.0.0.1", server.port, only_200)).passed


async def test_a_backend_that_never_answers_is_timed_out(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe("127.0.0.1", server.port, HTTP)
    took = loop.time() - started
    assert not result.passed and "no answer within 0.5 s" in result.detail
    assert 0.45 <= took < 1.0


async def test_probes_never_pile_up_on_a_slow_backend(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(None)  # each probe hangs until its timeout
    check = HealthCheck(protocol="http", interval=0.05, timeout=0.05, initial_jitter=0.0)
    events: list[HealthEvent] = []
    scheduler = HealthCheckScheduler(events.append, rng=random.Random(1))
    try:
        scheduler.sync([ProbeTarget("127.0.0.1", server.port, check, (("s", "b"),))])
        await asyncio.sleep(0.6)
    finally:
        await scheduler.close()
    assert server.most_open == 1  # one probe at a time, each abandoned at its timeout
    assert server.accepted >= 4
    assert events and {e.kind for e in events} == {"check-failed"}
    assert {(e.set_key, e.backend_key) for e in events} == {("s", "b")}


async def test_scheduler_follows_targets_and_reports_for_every_ref(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(b"HTTP/1.1 200 OK\r\n\r\n")
    check = HealthCheck(protocol="http", interval=0.05, timeout=0.5, initial_jitter=0.05)
    events: list[HealthEvent] = []
    enough = asyncio.Event()

    def report(event: HealthEvent) -> None:
        events.append(event)
        if len(events) >= 4:
            enough.set()

    scheduler = HealthCheckScheduler(report, rng=random.Random(7))
    refs = (("a", "x"), ("b", "y"))
    try:
        scheduler.sync([ProbeTarget("127.0.0.1", server.port, check, refs)])
        async with asyncio.timeout(IO_TIMEOUT):
            await enough.wait()
        assert {(e.set_key, e.backend_key, e.kind) for e in events} == {
            ("a", "x", "check-passed"),
            ("b", "y", "check-passed"),
        }
        scheduler.sync([])
        assert scheduler.target_count == 0
        await asyncio.sleep(0.05)  # a cancelled probe loop reports nothing more
        seen = len(events)
        await asyncio.sleep(0.2)
        assert len(events) == seen
    finally:
        await scheduler.close()
