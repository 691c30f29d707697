"""PROXY protocol on real connections: from a real HAProxy, and to backends."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from seaway.dataplane.proxy import tcp as proxy_tcp

Lab = Any  # the ``lab`` fixture (conftest.Lab)
SET = "default/web:80/TCP"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _v2_tcp4(src: str, sport: int, dst: str, dport: int) -> bytes:
    def packed(ip: str) -> bytes:
        return bytes(int(part) for part in ip.split("."))

    return SIG + b"\x21\x11\x00\x0c" + packed(src) + packed(dst) + struct.pack("!HH", sport, dport)


async def _wait_received(backend: Any, size: int) -> bytes:
    for _ in range(500):
        if backend.received and len(backend.received[0]) >= size:
            return bytes(backend.received[0])
        await asyncio.sleep(0.01)
    return bytes(backend.received[0]) if backend.received else b""


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_backend_receives_the_exact_header(lab: Lab, version: str) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    spec = lab.backend_set(SET, [a.backend], proxy_protocol=version)
    await plane.apply(lab.config([lab.listener(host, port, SET)], [spec]))
    reader, writer = await lab.client(host, port)
    client_ip, client_port = writer.get_extra_info("sockname")[:2]
    assert await lab.read_name(reader) == "a"
    writer.write(b"hello")
    if version == "v1":
        header = f"PROXY TCP4 {client_ip} {host} {client_port} {port}\r\n".encode()
    else:
        header = _v2_tcp4(client_ip, client_port, host, port)
    assert await _wait_received(a, len(header) + 5) == header + b"hello"


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_listener_uses_the_address_from_the_header(lab: Lab, version: str) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    # The address in the header (not 127.0.0.1) is what source ranges and the
    # header sent on to the backend see.
    listener = lab.listener(
        host, port, SET, accept_proxy_protocol=True, source_ranges=("198.51.100.0/24",)
    )
    spec = lab.backend_set(SET, [a.backend], proxy_protocol="v1")
    await plane.apply(lab.config([listener], [spec]))
    if version == "v1":
        incoming = b"PROXY TCP4 198.51.100.7 203.0.113.9 40000 443\r\n"
    else:
        incoming = _v2_tcp4("198.51.100.7", 40000, "203.0.113.9", 443)
    reader, writer = await lab.client(host, port)
    writer.write(incoming + b"data")  # header and data in one segment
    assert await lab.read_name(reader) == "a"
    expected = b"PROXY TCP4 198.51.100.7 203.0.113.9 40000 443\r\n" + b"data"
    assert await _wait_received(a, len(expected)) == expected
    (connection,) = plane.tcp_connections()
    assert connection.client_address == ("198.51.100.7", 40000)


async def test_header_outside_source_ranges_is_reset(lab: Lab) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    listener = lab.listener(
        host, port, SET, accept_proxy_protocol=True, source_ranges=("127.0.0.0/8",)
    )
    await plane.apply(lab.config([listener], [lab.backend_set(SET, [a.backend])]))
    reader, writer = await lab.client(host, port)
    writer.write(b"PROXY TCP4 198.51.100.7 203.0.113.9 40000 443\r\n")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2.0)
    assert a.accepted == 0


@pytest.mark.parametrize(
    "garbage", [b"GET / HTTP/1.1\r\n\r\n", b"PROXY TCP4 1.2.3.4\r\n", SIG + b"\x21\x11\xff\xff"]
)
async def test_malformed_incoming_header_is_reset(lab: Lab, garbage: bytes) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    listener = lab.listener(host, port, SET, accept_proxy_protocol=True)
    await plane.apply(lab.config([listener], [lab.backend_set(SET, [a.backend])]))
    reader, writer = await lab.client(host, port)
    writer.write(garbage)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2.0)
    assert a.accepted == 0
    assert plane.counters().listeners[f"TCP/{host}:{port}"].rejected == 1


async def test_missing_header_times_out_with_a_reset(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy_tcp, "PROXY_HEADER_TIMEOUT", 0.2)
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    listener = lab.listener(host, port, SET, accept_proxy_protocol=True)
    await plane.apply(lab.config([listener], [lab.backend_set(SET, [a.backend])]))
    reader, writer = await lab.client(host, port)
    writer.write(b"PROXY TCP4 ")  # a valid beginning, never finished
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2.0)
    assert 0.15 < loop.time() - started < 1.5
    assert a.accepted == 0


HAPROXY = shutil.which("haproxy")


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
@pytest.mark.parametrize("send", ["send-proxy", "send-proxy-v2"])
async def test_header_from_a_real_haproxy(lab: Lab, tmp_path: Path, send: str) -> None:
    a = await lab.tcp_backend("a")
    host, plane = lab.next_listen_host(), lab.plane()
    port = lab.free_port(host)
    listener = lab.listener(host, port, SET, accept_proxy_protocol=True)
    spec = lab.backend_set(SET, [a.backend], proxy_protocol="v2")
    await plane.apply(lab.config([listener], [spec]))

    front = lab.free_port("127.0.0.1")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "global\n"
        "  maxconn 64\n"
        "defaults\n"
        "  mode tcp\n"
        "  timeout connect 2s\n"
        "  timeout client 10s\n"
        "  timeout server 10s\n"
        "frontend front\n"
        f"  bind 127.0.0.1:{front}\n"
        "  default_backend seaway\n"
        "backend seaway\n"
        f"  server s {host}:{port} {send}\n"
    )
    process = await asyncio.create_subprocess_exec(
        str(HAPROXY),
        "-f",
        str(cfg),
        "-db",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        reader = writer = None
        for _ in range(200):  # wait for haproxy to listen
            try:
                reader, writer = await lab.client("127.0.0.1", front)
                break
            except OSError:
                assert process.returncode is None, "haproxy exited"
                await asyncio.sleep(0.02)
        assert reader is not None and writer is not None
        client_ip, client_port = writer.get_extra_info("sockname")[:2]
        assert await lab.read_name(reader) == "a"
        writer.write(b"through haproxy")
        # HAProxy told seaway who the client was; seaway tells the backend the same.
        expected = _v2_tcp4(client_ip, client_port, "127.0.0.1", front) + b"through haproxy"
        assert await _wait_received(a, len(expected)) == expected
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                process.kill()
                await asyncio.wait_for(process.wait(), 5.0)


async def test_ipv6_listener_sends_a_tcp6_header(lab: Lab) -> None:
    a = await lab.tcp_backend("a")  # an IPv4 backend behind an IPv6 listener
    plane = lab.plane()
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    spec = lab.backend_set(SET, [a.backend], proxy_protocol="v1")
    await plane.apply(lab.config([lab.listener("::1", port, SET)], [spec]))
    reader, writer = await lab.client("::1", port)
    client_port = writer.get_extra_info("sockname")[1]
    assert await lab.read_name(reader) == "a"
    header = f"PROXY TCP6 ::1 ::1 {client_port} {port}\r\n".encode()
    assert await _wait_received(a, len(header)) == header
    assert f"TCP/[::1]:{port}" in plane.counters().listeners
