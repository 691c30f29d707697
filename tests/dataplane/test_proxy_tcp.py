"""The proxy data plane over TCP: real sockets on loopback, real backends."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import random
import socket
from typing import Any

import pytest

from seaway.core.balancers.registry import make_balancer
from seaway.core.config import Backend
from seaway.core.hashing import flow_hash
from seaway.dataplane.proxy import tcp as proxy_tcp
from seaway.model.objects import SeawaySettings

Lab = Any  # the ``lab`` fixture (conftest.Lab)
SET = "default/web:80/TCP"


async def _three(lab: Lab) -> list[Any]:
    return [await lab.tcp_backend(name) for name in ("a", "b", "c")]


@pytest.mark.parametrize(
    ("algorithm", "low", "high"),
    [("round-robin", 100, 100), ("random", 65, 135), ("maglev", 60, 140)],
)
async def test_300_connections_spread_fairly(lab: Lab, algorithm: str, low: int, high: int) -> None:
    backends = await _three(lab)
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [b.backend for b in backends], algorithm=algorithm)
    result = await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
    assert result.errors == {}

    async def one() -> str:
        return str(await lab.connect_and_name(host, port))

    names: list[str] = []
    for _ in range(10):  # 10 waves of 30 concurrent connections
        names += await asyncio.gather(*(one() for _ in range(30)))
    spread = collections.Counter(names)
    assert sum(spread.values()) == 300
    assert set(spread) == {"a", "b", "c"}
    assert all(low <= n <= high for n in spread.values()), spread
    counters = plane.counters()
    assert counters.listeners[f"TCP/{host}:{port}"].total == 300
    assert sum(counters.backends[(SET, b.backend.key)].total for b in backends) == 300


async def test_refused_backend_is_retried_elsewhere(lab: Lab) -> None:
    good = await lab.tcp_backend("good")
    dead_port = lab.free_port("127.0.0.1")  # nothing listens there
    dead_backend = Backend(address="127.0.0.1", port=dead_port, name="dead")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [dead_backend, good.backend], algorithm="round-robin")
    await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
    names = [await lab.connect_and_name(host, port) for _ in range(10)]
    assert names == ["good"] * 10
    counters = plane.counters().backends
    # Round-robin offers the dead backend first; every time, the retry went elsewhere.
    assert counters[(SET, dead_backend.key)].failed >= 5
    assert counters[(SET, dead_backend.key)].total == 0
    assert counters[(SET, good.backend.key)].total == 10


async def test_empty_set_resets_the_client_at_once(lab: Lab) -> None:
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    await plane.apply(lab.config([lab.listener(host, port, SET)], [lab.backend_set(SET, [])]))
    reader, _writer = await lab.client(host, port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2.0)
    assert loop.time() - started < 1.0
    assert plane.counters().listeners[f"TCP/{host}:{port}"].rejected == 1


async def test_all_backends_refusing_resets_the_client(lab: Lab) -> None:
    dead = [Backend("127.0.0.1", lab.free_port("127.0.0.1")) for _ in range(2)]
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    await plane.apply(lab.config([lab.listener(host, port, SET)], [lab.backend_set(SET, dead)]))
    reader, _writer = await lab.client(host, port)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2.0)
    failed = sum(plane.counters().backends[(SET, d.key)].failed for d in dead)
    assert failed == 2  # both tried; connect_attempts (3) never retries one that failed


async def _echo(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> bytes:
    writer.write(payload)
    await asyncio.wait_for(writer.drain(), 5.0)
    return await asyncio.wait_for(reader.readexactly(len(payload)), 5.0)


async def test_connection_survives_50_applies(lab: Lab) -> None:
    a, b, c = await _three(lab)
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    other = "default/other:81/TCP"
    base = lab.backend_set(SET, [a.backend, b.backend])
    await plane.apply(lab.config([lab.listener(host, port, SET)], [base]))
    reader, writer = await lab.client(host, port)
    first = await lab.read_name(reader)
    assert await _echo(reader, writer, b"before") == b"before"

    ranges = [(), ("10.0.0.0/8",), ("127.0.0.0/8", "192.168.0.0/16"), ("::1/128",)]
    member_sets = [[c.backend], [a.backend, c.backend], [b.backend], []]
    for i in range(50):
        sets = [
            lab.backend_set(SET, member_sets[i % 4], algorithm=("maglev", "random")[i % 2]),
            lab.backend_set(other, [a.backend][: i % 2]),
        ]
        listeners = [
            lab.listener(host, port, (SET, other)[i % 2], source_ranges=ranges[i % 4]),
        ]
        result = await plane.apply(lab.config(listeners, sets))
        assert result.errors == {}
    # The connection's backend was removed and re-added, its listener re-pointed and
    # closed to its address range many times: it still carries data both ways.
    assert await _echo(reader, writer, b"after 50 applies") == b"after 50 applies"
    assert first in {"a", "b"}
    # The last apply left the listener on `other` with no backends.
    final = [lab.listener(host, port, SET)]
    await plane.apply(lab.config(final, [lab.backend_set(SET, [c.backend])]))
    assert await lab.connect_and_name(host, port) == "c"
    assert await _echo(reader, writer, b"still") == b"still"


async def test_removed_backend_gets_no_new_connections(lab: Lab) -> None:
    a, b = await lab.tcp_backend("a"), await lab.tcp_backend("b")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    both = lab.backend_set(SET, [a.backend, b.backend], algorithm="maglev")
    await plane.apply(lab.config([lab.listener(host, port, SET)], [both]))
    # Keep one connection open on `a`.
    held = None
    for _ in range(50):
        reader, writer = await lab.client(host, port)
        if await lab.read_name(reader) == "a":
            held = (reader, writer)
            break
        await lab.close_writer(writer)
    assert held is not None
    accepted_before = a.accepted
    only_b = lab.backend_set(SET, [b.backend], algorithm="maglev")
    await plane.apply(lab.config([lab.listener(host, port, SET)], [only_b]))
    names = [await lab.connect_and_name(host, port) for _ in range(30)]
    assert names == ["b"] * 30
    assert a.accepted == accepted_before
    # kube-proxy keeps established flows to a removed endpoint; so does seaway.
    assert await _echo(*held, b"ping") == b"ping"
    assert plane.counters().backends[(SET, a.backend.key)].active == 1


async def test_removed_listener_stops_accepting_but_keeps_connections(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [a.backend])
    await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
    reader, writer = await lab.client(host, port)
    assert await lab.read_name(reader) == "a"
    await plane.apply(lab.config([], []))
    with pytest.raises(ConnectionRefusedError):
        await lab.client(host, port)
    assert await _echo(reader, writer, b"alive") == b"alive"


@pytest.mark.parametrize(
    ("ranges", "allowed"),
    [(("10.0.0.0/8",), False), (("10.0.0.0/8", "127.0.0.0/8"), True), ((), True)],
)
async def test_source_ranges(lab: Lab, ranges: tuple[str, ...], allowed: bool) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [a.backend])
    await plane.apply(lab.config([lab.listener(host, port, SET, source_ranges=ranges)], [spec]))
    key = f"TCP/{host}:{port}"
    if allowed:
        assert await lab.connect_and_name(host, port) == "a"
        assert plane.counters().listeners[key].rejected == 0
    else:
        reader, _writer = await lab.client(host, port)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 2.0)
        assert plane.counters().listeners[key].rejected == 1
        assert a.accepted == 0


async def test_source_ranges_change_in_place(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [a.backend])
    closed = lab.listener(host, port, SET, source_ranges=("192.0.2.0/24",))
    await plane.apply(lab.config([closed], [spec]))
    reader, _w = await lab.client(host, port)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2.0)
    opened = lab.listener(host, port, SET, source_ranges=("127.0.0.1/32",))
    await plane.apply(lab.config([opened], [spec]))
    assert await lab.connect_and_name(host, port) == "a"


async def test_half_close_still_receives_the_reply(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    await plane.apply(
        lab.config([lab.listener(host, port, SET)], [lab.backend_set(SET, [a.backend])])
    )
    reader, writer = await lab.client(host, port)
    writer.write(b"question")
    writer.write_eof()  # shutdown(SHUT_WR): the client is done sending
    # The backend echoes after seeing the EOF... and the proxy keeps the reply path open.
    reply = await asyncio.wait_for(reader.read(), 5.0)
    assert reply == b"a\nquestion"
    assert bytes(a.received[0]) == b"question"


class _SlowSink(asyncio.Protocol):
    """A backend that reads 64 KiB at a time with pauses and returns a SHA-256 at EOF."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        # A small receive buffer so that the slowness reaches the proxy quickly.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)

    def data_received(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.transport.pause_reading()
        asyncio.get_running_loop().call_later(0.002, self._resume)

    def _resume(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> None:
        # Answer with the digest; returning None then closes after it is sent.
        self.transport.write(self.digest.hexdigest().encode())


async def test_backpressure_bounds_proxy_buffers(lab: Lab) -> None:
    loop = asyncio.get_running_loop()
    sinks: list[_SlowSink] = []

    def make() -> _SlowSink:
        sinks.append(_SlowSink())
        return sinks[-1]

    server = await loop.create_server(make, "127.0.0.1", 0)
    try:
        sink_port = server.sockets[0].getsockname()[1]
        host, plane = lab.next_listen_host(), lab.plane()
        port = lab.free_port(host)
        spec = lab.backend_set(SET, [Backend("127.0.0.1", sink_port)])
        await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
        reader, writer = await lab.client(host, port)
        payload = os.urandom(1 << 20)
        total = 64 << 20
        peak = [0, 0, 0]
        expected = hashlib.sha256()
        for _ in range(total // len(payload)):
            writer.write(payload)
            expected.update(payload)
            await asyncio.wait_for(writer.drain(), 30.0)
            for connection in plane.tcp_connections():
                sizes = connection.buffered_bytes()
                peak = [max(p, s) for p, s in zip(peak, sizes, strict=True)]
        writer.write_eof()
        digest = await asyncio.wait_for(reader.read(), 30.0)
        assert digest.decode() == expected.hexdigest()
        assert sinks[0].size == total
        # Without backpressure the proxy would have held tens of MiB for the slow
        # backend; with it, at most the high-water mark plus one read.
        assert 0 < peak[1] <= proxy_tcp.HIGH_WATER + 512 * 1024, peak
        assert peak[2] <= proxy_tcp.PENDING_LIMIT + 512 * 1024, peak
    finally:
        server.close()
        for sink in sinks:
            sink.transport.abort()


async def test_maglev_same_backend_across_instances(lab: Lab) -> None:
    backends = [await lab.tcp_backend(name) for name in "abcde"]
    host = lab.next_listen_host()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [b.backend for b in backends], algorithm="maglev")
    source_ports = [lab.free_port("127.0.0.1") for _ in range(8)]
    core = make_balancer("maglev", spec.backends, rng=random.Random(0), maglev_table_size=251)
    expected = [
        str(core.pick(flow_hash("TCP", "127.0.0.1", sp, host, port)).name)  # type: ignore[union-attr]
        for sp in source_ports
    ]
    seen: list[list[str]] = []
    for seed in (1, 2):
        plane = lab.plane(seed=seed)
        await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
        names = []
        for sp in source_ports:
            reader, writer = await lab.client(host, port, source_port=sp)
            names.append(await lab.read_name(reader))
            await lab.close_writer(writer, reset=True)  # RST: no TIME_WAIT on the tuple
        seen.append(names)
        await plane.close()
    assert seen[0] == seen[1] == expected


async def test_bind_failure_is_reported_and_retried(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    blocker = socket.socket()
    blocker.bind((host, port))
    blocker.listen()
    other_host = lab.next_listen_host()
    other_port = lab.free_port(other_host)
    spec = lab.backend_set(SET, [a.backend])
    listeners = [lab.listener(host, port, SET), lab.listener(other_host, other_port, SET)]
    cfg = lab.config(listeners, [spec])
    try:
        result = await plane.apply(cfg)
        assert list(result.errors) == [f"TCP/{host}:{port}"]
        assert "in use" in result.errors[f"TCP/{host}:{port}"]
        # The rest of the configuration applied.
        assert await lab.connect_and_name(other_host, other_port) == "a"
    finally:
        blocker.close()
    result = await plane.apply(cfg)  # same configuration: only the retry happens
    assert result.errors == {}
    assert await lab.connect_and_name(host, port) == "a"


async def test_session_affinity_keeps_a_client_on_its_backend(lab: Lab) -> None:
    backends = await _three(lab)
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(
        SET, [b.backend for b in backends], algorithm="round-robin", affinity_timeout=60.0
    )
    await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
    names = {await lab.connect_and_name(host, port) for _ in range(12)}
    assert len(names) == 1  # round-robin alone would have used all three
    # The remembered backend leaves the set: the client is balanced again, and sticks.
    (name,) = names
    rest = lab.backend_set(
        SET,
        [b.backend for b in backends if b.name != name],
        algorithm="round-robin",
        affinity_timeout=60.0,
    )
    await plane.apply(lab.config([lab.listener(host, port, SET)], [rest]))
    again = {await lab.connect_and_name(host, port) for _ in range(6)}
    assert len(again) == 1 and name not in again


async def test_keepalive_and_nodelay_on_both_legs(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    settings = SeawaySettings()
    await plane.apply(
        lab.config([lab.listener(host, port, SET)], [lab.backend_set(SET, [a.backend])], settings)
    )
    reader, _writer = await lab.client(host, port)
    assert await lab.read_name(reader) == "a"
    (connection,) = plane.tcp_connections()
    legs = [connection._client, connection._leg.transport]
    for leg in legs:
        sock = leg.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert (
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            == settings.keepalive.idle_seconds
        )
        assert (
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
            == settings.keepalive.interval_seconds
        )
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == settings.keepalive.count
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_client_data_sent_before_backend_is_up_is_delivered(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    await plane.apply(
        lab.config([lab.listener(host, port, SET)], [lab.backend_set(SET, [a.backend])])
    )
    reader, writer = await lab.client(host, port)
    writer.write(b"early bytes")  # written before the proxy has connected onwards
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5.0) == b"a\nearly bytes"
