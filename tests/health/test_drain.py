"""The L4 proxy's side of health: connect outcomes as events, and the drain timeout."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from types import MappingProxyType

import pytest

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.core.health import HealthEvent
from seaway.dataplane.proxy.plane import ProxyDataPlane
from seaway.model.objects import SeawaySettings
from seaway.testing.processes import free_port

IO_TIMEOUT = 5.0
SET = "default/web:80/TCP"


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def config(host: str, port: int, backends: list[Backend], **settings: object) -> DesiredConfig:
    listener = Listener("TCP", host, port, "default/web", "", SET)
    backend_set = BackendSet(
        SET, "default/web", "", "TCP", tuple(backends), algorithm="round-robin"
    )
    return DesiredConfig(
        listeners=MappingProxyType({listener.key: listener}),
        backend_sets=MappingProxyType({SET: backend_set}),
        settings=SeawaySettings(**settings),  # type: ignore[arg-type]
    )


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield Backend("127.0.0.1", int(server.sockets[0].getsockname()[1]), name="echo")
    finally:
        server.close()


async def roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"ping")
    async with asyncio.timeout(IO_TIMEOUT):
        return await reader.readexactly(4)


async def test_the_proxy_reports_connect_failures_and_successes(backend: Backend) -> None:
    events: list[HealthEvent] = []
    plane = ProxyDataPlane(rng=random.Random(1), on_health_event=events.append)
    host, port = "127.243.0.1", free_port("127.243.0.1")
    dead = Backend("127.0.0.1", free_port(), name="dead")
    try:
        await plane.apply(config(host, port, [dead, backend]))
        for _ in range(2):  # round robin: one of the two first picks the dead backend
            async with asyncio.timeout(IO_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port)
            assert await roundtrip(reader, writer) == b"ping"
            writer.close()
    finally:
        await plane.close()
    kinds = {(e.set_key, e.backend_key, e.kind) for e in events}
    assert (SET, dead.key, "connect-failed") in kinds
    assert (SET, backend.key, "connect-succeeded") in kinds
    assert (SET, dead.key, "connect-succeeded") not in kinds


@pytest.mark.parametrize("drain_timeout", [0.0, 0.3])
async def test_drain_timeout_resets_connections_to_backends_that_left(
    backend: Backend, drain_timeout: float
) -> None:
    plane = ProxyDataPlane(rng=random.Random(1))
    host, port = "127.243.0.2", free_port("127.243.0.2")
    loop = asyncio.get_running_loop()
    try:
        await plane.apply(config(host, port, [backend], drain_timeout_seconds=drain_timeout))
        async with asyncio.timeout(IO_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
        assert await roundtrip(reader, writer) == b"ping"
        await plane.apply(config(host, port, [], drain_timeout_seconds=drain_timeout))
        left_at = loop.time()
        assert await roundtrip(reader, writer) == b"ping"  # draining: it goes on
        if drain_timeout == 0:
            await asyncio.sleep(0.6)
            assert await roundtrip(reader, writer) == b"ping"  # no timeout: never cut
        else:
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                async with asyncio.timeout(IO_TIMEOUT):
                    await reader.read()  # returns at the reset
                    raise asyncio.IncompleteReadError(b"", None)
            assert drain_timeout - 0.05 <= loop.time() - left_at < drain_timeout + 0.5
        writer.close()
    finally:
        await plane.close()


async def test_a_backend_back_in_its_set_is_not_reset(backend: Backend) -> None:
    plane = ProxyDataPlane(rng=random.Random(1))
    host, port = "127.243.0.3", free_port("127.243.0.3")
    try:
        await plane.apply(config(host, port, [backend], drain_timeout_seconds=0.3))
        async with asyncio.timeout(IO_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
        assert await roundtrip(reader, writer) == b"ping"
        await plane.apply(config(host, port, [], drain_timeout_seconds=0.3))
        await plane.apply(config(host, port, [backend], drain_timeout_seconds=0.3))
        await asyncio.sleep(0.5)
        assert await roundtrip(reader, writer) == b"ping"
        writer.close()
    finally:
        await plane.close()
