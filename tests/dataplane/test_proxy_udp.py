"""The proxy data plane over UDP: real datagram sockets on loopback."""

from __future__ import annotations

import asyncio
import collections
import socket
from typing import Any

from seaway.model.objects import SeawaySettings

Lab = Any  # the ``lab`` fixture (conftest.Lab)
SET = "default/dns:53/UDP"


class UdpClient(asyncio.DatagramProtocol):
    """A UDP client socket on 127.0.0.1 whose replies are queued."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.put_nowait((data, (addr[0], addr[1])))

    async def ask(self, payload: bytes, target: tuple[str, int]) -> tuple[bytes, tuple[str, int]]:
        self.transport.sendto(payload, target)
        return await asyncio.wait_for(self.replies.get(), 5.0)


async def _client(clients: list[UdpClient]) -> UdpClient:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0)), 5.0
    )
    clients.append(protocol)
    return protocol


async def _setup(lab: Lab, names: str, algorithm: str = "random", **settings: Any) -> Any:
    backends = [await lab.udp_backend(n) for n in names]
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host, socket.SOCK_DGRAM)
    spec = lab.backend_set(SET, [b.backend for b in backends], protocol="UDP", algorithm=algorithm)
    listeners = [lab.listener(host, port, SET, protocol="UDP")]
    result = await plane.apply(lab.config(listeners, [spec], SeawaySettings(**settings)))
    assert result.errors == {}
    return backends, plane, (host, port), listeners


async def test_round_trip_and_stickiness(lab: Lab) -> None:
    clients: list[UdpClient] = []
    try:
        backends, plane, target, _ = await _setup(lab, "abc")
        seen: dict[int, set[str]] = collections.defaultdict(set)
        for i in range(12):
            client = await _client(clients)
            for n in range(5):
                data, source = await client.ask(f"q{n}".encode(), target)
                name, _, echoed = data.partition(b":")
                assert echoed == f"q{n}".encode()
                # The reply comes from the address the client sent to.
                assert source == target
                seen[i].add(name.decode())
        # Every client stayed on one backend (random picks per flow, not per datagram).
        assert all(len(names) == 1 for names in seen.values()), seen
        assert len(set().union(*seen.values())) > 1  # and clients were spread
        assert plane.udp_flow_count() == 12
        key = f"UDP/{target[0]}:{target[1]}"
        assert plane.counters().listeners[key].total == 12
        assert sum(b.datagrams for b in backends) == 60
    finally:
        for client in clients:
            client.transport.close()


async def test_flow_is_repicked_after_its_backend_is_removed(lab: Lab) -> None:
    clients: list[UdpClient] = []
    try:
        backends, plane, target, listeners = await _setup(lab, "ab", algorithm="maglev")
        client = await _client(clients)
        first = (await client.ask(b"x", target))[0].split(b":")[0].decode()
        remaining = [b for b in backends if b.name != first]
        spec = lab.backend_set(
            SET, [b.backend for b in remaining], protocol="UDP", algorithm="maglev"
        )
        await plane.apply(lab.config(listeners, [spec]))
        second = (await client.ask(b"y", target))[0].split(b":")[0].decode()
        assert second == remaining[0].name != first
        removed = next(b for b in backends if b.name == first)
        assert removed.datagrams == 1
        assert plane.udp_flow_count() == 1
    finally:
        for client in clients:
            client.transport.close()


async def test_no_backend_drops_and_counts(lab: Lab) -> None:
    clients: list[UdpClient] = []
    try:
        host, plane = lab.next_listen_host(), lab.plane()
        port = lab.free_port(host, socket.SOCK_DGRAM)
        listeners = [lab.listener(host, port, SET, protocol="UDP")]
        await plane.apply(lab.config(listeners, [lab.backend_set(SET, [], protocol="UDP")]))
        client = await _client(clients)
        client.transport.sendto(b"lost", (host, port))
        key = f"UDP/{host}:{port}"
        for _ in range(100):
            if plane.counters().listeners[key].rejected:
                break
            await asyncio.sleep(0.01)
        assert plane.counters().listeners[key].rejected == 1
        assert client.replies.empty()
    finally:
        for client in clients:
            client.transport.close()


async def test_source_ranges_drop_datagrams(lab: Lab) -> None:
    clients: list[UdpClient] = []
    try:
        backends, plane, target, _ = await _setup(lab, "a")
        closed = [lab.listener(*target, SET, protocol="UDP", source_ranges=("10.0.0.0/8",))]
        spec = lab.backend_set(SET, [backends[0].backend], protocol="UDP")
        await plane.apply(lab.config(closed, [spec]))
        client = await _client(clients)
        client.transport.sendto(b"nope", target)
        await asyncio.sleep(0.1)
        assert backends[0].datagrams == 0
        opened = [lab.listener(*target, SET, protocol="UDP", source_ranges=("127.0.0.0/8",))]
        await plane.apply(lab.config(opened, [spec]))
        assert (await client.ask(b"yes", target))[0] == b"a:yes"
        assert plane.counters().listeners[f"UDP/{target[0]}:{target[1]}"].rejected == 1
    finally:
        for client in clients:
            client.transport.close()


async def test_idle_flows_expire(lab: Lab) -> None:
    clients: list[UdpClient] = []
    try:
        backends, plane, target, _ = await _setup(lab, "a", udp_idle_timeout_seconds=0.2)
        client = await _client(clients)
        assert (await client.ask(b"hi", target))[0] == b"a:hi"
        assert plane.udp_flow_count() == 1
        for _ in range(100):
            if plane.udp_flow_count() == 0:
                break
            await asyncio.sleep(0.02)
        assert plane.udp_flow_count() == 0
        key = (SET, backends[0].backend.key)
        assert plane.counters().backends[key].active == 0
        # A new datagram opens a new flow.
        assert (await client.ask(b"again", target))[0] == b"a:again"
        assert plane.counters().backends[key].total == 2
    finally:
        for client in clients:
            client.transport.close()


async def test_flow_table_is_bounded(lab: Lab) -> None:
    clients: list[UdpClient] = []
    try:
        _, plane, target, _ = await _setup(lab, "a", udp_flow_table_size=4)
        for _ in range(10):
            client = await _client(clients)
            assert (await client.ask(b"q", target))[0] == b"a:q"
        assert plane.udp_flow_count() == 4
        key = f"UDP/{target[0]}:{target[1]}"
        assert plane.counters().listeners[key].active == 4
    finally:
        for client in clients:
            client.transport.close()
