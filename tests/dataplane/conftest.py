"""Fixtures for the proxy data plane: real TCP/UDP backends on loopback, and a lab.

Each backend replies with its own name, so tests can tell where a connection went.
Listeners get their own 127.240.x.y address (any 127/8 address is bindable on
Linux) and a port the kernel just handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import itertools
import random
import socket
import struct
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.dataplane.proxy.plane import ProxyDataPlane
from seaway.model.objects import SeawaySettings

# Every network await in these tests is bounded by this.
IO_TIMEOUT = 5.0

_hosts = itertools.count(1)


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Any]:
    """Run the data plane tests on uvloop (what seaway runs on) and on asyncio's loop."""
    return {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


def next_listen_host() -> str:
    """A fresh 127.240.x.y address for a listener."""
    n = next(_hosts)
    return f"127.240.{n // 250}.{n % 250 + 1}"


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -- backends -------------------------------------------------------------------


class _NameEchoProtocol(asyncio.Protocol):
    """Sends ``name\\n`` on connect, echoes what it receives, half-closes on EOF."""

    def __init__(self, backend: TcpBackend) -> None:
        self.backend = backend
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.backend.accepted += 1
        self.backend.received.append(self.buffer)
        self.backend.transports.add(transport)
        transport.write(self.backend.name.encode() + b"\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.backend.echo:
            self.transport.write(data)

    def eof_received(self) -> None:
        # Returning None: the transport sends what is buffered, then closes (FIN).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend.transports.discard(self.transport)


@dataclass
class TcpBackend:
    """A TCP server on 127.0.0.1 that says its name and echoes."""

    name: str
    echo: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    accepted: int = 0
    received: list[bytearray] = field(default_factory=list)
    transports: set[asyncio.Transport] = field(default_factory=set)
    server: asyncio.AbstractServer | None = None

    @property
    def backend(self) -> Backend:
        return Backend(address=self.host, port=self.port, name=self.name)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _NameEchoProtocol(self), self.host, 0, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for transport in list(self.transports):
            transport.abort()


class _NameUdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, backend: UdpBackend) -> None:
        self.backend = backend

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.backend.datagrams += 1
        self.backend.peers.add((addr[0], addr[1]))
        self.transport.sendto(self.backend.name.encode() + b":" + data, addr)


@dataclass
class UdpBackend:
    """A UDP server on 127.0.0.1 that answers ``name:payload``."""

    name: str
    host: str = "127.0.0.1"
    port: int = 0
    datagrams: int = 0
    peers: set[tuple[str, int]] = field(default_factory=set)
    transport: asyncio.DatagramTransport | None = None

    @property
    def backend(self) -> Backend:
        return Backend(address=self.host, port=self.port, name=self.name)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _NameUdpProtocol(self), local_addr=(self.host, 0)
        )
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# -- configurations -------------------------------------------------------------


def backend_set(
    key: str,
    backends: Iterable[Backend],
    *,
    protocol: str = "TCP",
    algorithm: str = "round-robin",
    **kwargs: Any,
) -> BackendSet:
    """A BackendSet with test defaults."""
    return BackendSet(
        key=key,
        service="default/web",
        port_name="http",
        protocol=protocol,  # type: ignore[arg-type]
        backends=tuple(backends),
        algorithm=algorithm,
        maglev_table_size=kwargs.pop("maglev_table_size", 251),
        **kwargs,
    )


def listener(
    address: str,
    port: int,
    set_key: str,
    *,
    protocol: str = "TCP",
    source_ranges: Iterable[str] = (),
    accept_proxy_protocol: bool = False,
) -> Listener:
    """A Listener with test defaults."""
    return Listener(
        protocol=protocol,  # type: ignore[arg-type]
        address=address,
        port=port,
        service="default/web",
        port_name="http",
        backend_set=set_key,
        source_ranges=tuple(ipaddress.ip_network(r) for r in source_ranges),
        accept_proxy_protocol=accept_proxy_protocol,
    )


def config(
    listeners: Iterable[Listener],
    sets: Iterable[BackendSet],
    settings: SeawaySettings | None = None,
) -> DesiredConfig:
    """A DesiredConfig from listeners and backend sets."""
    return DesiredConfig(
        listeners={item.key: item for item in listeners},
        backend_sets={item.key: item for item in sets},
        settings=settings if settings is not None else SeawaySettings(),
    )


# -- clients --------------------------------------------------------------------


async def open_client(
    host: str, port: int, *, source_port: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP client connection (optionally from a fixed source port on 127.0.0.1)."""
    if source_port is None:
        return await asyncio.wait_for(asyncio.open_connection(host, port), IO_TIMEOUT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", source_port))
        sock.setblocking(False)
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (host, port)), IO_TIMEOUT
        )
        return await asyncio.wait_for(asyncio.open_connection(sock=sock), IO_TIMEOUT)
    except BaseException:
        sock.close()
        raise


async def read_name(reader: asyncio.StreamReader) -> str:
    """The backend's greeting line."""
    line = await asyncio.wait_for(reader.readline(), IO_TIMEOUT)
    return line.decode().strip()


async def close_writer(writer: asyncio.StreamWriter, *, reset: bool = False) -> None:
    """Close a client connection (with an RST when ``reset``: no TIME_WAIT left)."""
    if reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), IO_TIMEOUT)


async def connect_and_name(host: str, port: int) -> str:
    """Connect, read the backend's name, close."""
    reader, writer = await open_client(host, port)
    try:
        return await read_name(reader)
    finally:
        await close_writer(writer)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the lab --------------------------------------------------------------------


class Lab:
    """Owns the backends and data planes of one test, and closes them all.

    Also carries this module's helpers, so that test modules need not import conftest.
    """

    IO_TIMEOUT = IO_TIMEOUT
    next_listen_host = staticmethod(next_listen_host)
    free_port = staticmethod(free_port)
    backend_set = staticmethod(backend_set)
    listener = staticmethod(listener)
    config = staticmethod(config)
    read_name = staticmethod(read_name)
    close_writer = staticmethod(close_writer)
    connect_and_name = staticmethod(connect_and_name)
    sha256 = staticmethod(sha256)

    def __init__(self) -> None:
        self.tcp_backends: list[TcpBackend] = []
        self.udp_backends: list[UdpBackend] = []
        self.planes: list[ProxyDataPlane] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def tcp_backend(self, name: str, *, echo: bool = True) -> TcpBackend:
        backend = TcpBackend(name=name, echo=echo)
        self.tcp_backends.append(backend)
        await backend.start()
        return backend

    async def udp_backend(self, name: str) -> UdpBackend:
        backend = UdpBackend(name=name)
        self.udp_backends.append(backend)
        await backend.start()
        return backend

    def plane(self, seed: int = 7) -> ProxyDataPlane:
        plane = ProxyDataPlane(rng=random.Random(seed))
        self.planes.append(plane)
        return plane

    async def client(
        self, host: str, port: int, *, source_port: int | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await open_client(host, port, source_port=source_port)
        self.writers.append(writer)
        return reader, writer

    async def aclose(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        for plane in self.planes:
            await asyncio.wait_for(plane.close(), IO_TIMEOUT)
        for tcp in self.tcp_backends:
            tcp.close()
        for udp in self.udp_backends:
            udp.close()
        await asyncio.sleep(0)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        await lab.aclose()
