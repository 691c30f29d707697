"""The lab's bounded load: wrk's figures parsed, and the Python generator against a real
server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from seaway.lab.manifests import NodeView, PodEndpoint, render_manifests
from seaway.lab.scenarios.kernel_vs_proxy import (
    HAPROXY_PORT,
    PROXY_PORT,
    haproxy_config,
    proxy_manifests,
)
from seaway.lab.spec import load_lab
from seaway.lab.throughput import parse_wrk, run_python

WRK_OUTPUT = """\
Running 5s test @ http://198.18.0.99:80/hostname
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   532.10us  300.00us  12.00ms   90.00%
    Req/Sec    29.60k     1.00k   31.00k    70.00%
  Latency Distribution
     50%  390.00us
     75%  600.00us
     90%    1.00ms
     99%    2.08ms
  148020 requests in 5.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  29604.00
Transfer/sec:      4.00MB
"""


def test_wrk_figures() -> None:
    figures = parse_wrk(WRK_OUTPUT)
    assert figures.requests == 148020
    assert figures.seconds == pytest.approx(5.0)
    assert figures.requests_per_second == pytest.approx(29604.0)
    assert figures.p50_ms == pytest.approx(0.39)
    assert figures.p99_ms == pytest.approx(2.08)
    assert figures.errors == 2 + 1 + 4
    with pytest.raises(ValueError, match="no figures"):
        parse_wrk("unable to connect to 198.18.0.99:80 Connection refused\n")


class LoopbackThread:
    """Stands in for a NamespaceThread: connections from the test's own namespace."""

    async def open_connection(
        self, host: str, port: int, limit: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, port), limit)


@pytest.fixture
async def server() -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await asyncio.wait_for(srv.wait_closed(), 5)


async def test_python_generator_measures_a_real_server(server: int) -> None:
    figures = await run_python(LoopbackThread(), "127.0.0.1", server, "/",  # type: ignore[arg-type]
                               0.5)
    assert figures.tool == "python"
    assert figures.errors == 0
    assert figures.requests > 10
    assert figures.requests_per_second == pytest.approx(figures.requests / figures.seconds)
    assert 0 < figures.p50_ms <= figures.p99_ms


def test_contenders_send_to_the_same_nodes() -> None:
    spec = load_lab(None)
    web = next(s for s in spec.services if s.name == "web")
    config = haproxy_config(spec, web, "198.18.0.99")
    assert "mode tcp" in config and "nbthread 1" in config
    assert f"bind 198.18.0.99:{HAPROXY_PORT}" in config
    for node in spec.nodes:
        assert f"server {node.name} {node.address}:30080" in config
    docs = render_manifests(
        spec, [PodEndpoint("web-1", "web", "100.64.1.2", "node-a", "zone-a", True, False)],
        [NodeView(n.name, n.address, n.zone) for n in spec.nodes])
    copy = proxy_manifests(docs, web, 9981)
    services = [d for d in copy if d["kind"] == "Service"]
    assert [s["metadata"]["name"] for s in services] == ["web"]
    assert services[0]["spec"]["ports"][0]["port"] == PROXY_PORT
    assert services[0]["spec"]["ports"][0]["nodePort"] == 30080
    assert next(d for d in copy if d["kind"] == "SeawayConfig")["spec"]["adminAddress"] == (
        "127.0.0.1:9981")
    assert sum(d["kind"] == "Node" for d in copy) == 3
