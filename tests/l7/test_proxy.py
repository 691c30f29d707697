"""The L7 proxy end to end in process: real sockets, real clients (httpx, curl, raw
sockets), real backends (`seaway backend` servers and a header-echo server)."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.l7.conftest import IO_TIMEOUT, Lab, config_from, gateway_docs, next_address, service_docs

from seaway.http1 import HTTPServer, Request, Response


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def _curl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), IO_TIMEOUT + 2)
    body, _, code = out.decode().rpartition("\n")
    return int(code), body


async def _raw(host: str, port: int, data: bytes, *, wait: float = 1.0) -> bytes:
    """Send ``data`` on a new connection; everything received until close or ``wait`` s."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), IO_TIMEOUT)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received
    finally:
        writer.close()


@pytest.fixture
async def echo_headers() -> AsyncIterator[int]:
    """A backend answering with the request's method, target and header fields."""

    async def handle(request: Request) -> Response:
        lines = [f"{request.method} {request.target}"]
        lines += [f"{name.lower()}: {value}" for name, value in request.headers]
        return Response.text(200, "\n".join(lines) + "\n", (("X-Seaway-Backend", "echo"),))

    server = HTTPServer(handle)
    await server.start("127.0.0.1:0")
    try:
        yield int(server.bound_address.rsplit(":", 1)[1])
    finally:
        await server.close()


async def _gateway(lab: Lab, routes: list[dict[str, Any]], services: list[dict[str, Any]],
                   extra: list[dict[str, Any]] | None = None) -> tuple[str, int, list[Any]]:
    address, port = next_address(), 0
    port = _free_port(address)
    docs = [*services, *gateway_docs(port, address, routes), *(extra or [])]
    result = await lab.plane.apply(config_from(docs))
    assert not result.errors
    return address, port, docs


async def test_keepalive_clients_spread_evenly_over_backends(lab: Lab) -> None:
    ports = [await lab.backend(f"pod-{i}") for i in range(3)]
    address, port, _ = await _gateway(
        lab, [{"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}],
        service_docs("web", ports),
    )
    counts: collections.Counter[str] = collections.Counter()

    async def client() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=IO_TIMEOUT) as c:
            for _ in range(100):
                r = await c.get(f"http://{address}:{port}/hostname")
                assert r.status_code == 200
                counts[r.headers["x-seaway-backend"]] += 1

    await asyncio.gather(client(), client(), client())
    listener_counters = lab.plane.counters().listeners[f"HTTP/{address}:{port}"]
    assert listener_counters.total == 3  # one keep-alive connection per client
    assert set(counts) == {"pod-0", "pod-1", "pod-2"}
    mean = sum(counts.values()) / 3
    assert max(counts.values()) / mean < 1.1, counts
    # Upstream connections are pooled and reused: far fewer than requests.
    assert sum(c.total for c in lab.plane.counters().backends.values()) == 300
    assert lab.plane.idle_upstream_connections() <= 9


SMUGGLING = {
    "CL.TE": b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 30\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "TE.CL": b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 4\r\n\r\n1e\r\nGET /smuggled HTTP/1.1\r\nX: \r\n0\r\n\r\n",
    "TE.TE duplicate": b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                       b"Transfer-Encoding: x\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "TE.TE xchunked": b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n"
                      b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "TE.TE space before colon": b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked"
                                b"\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "TE.TE gzip, chunked": b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked"
                           b"\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "duplicate Content-Length": b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
                                b"Content-Length: 27\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "obs-fold": b"GET /hostname HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nabc\r\n0\r\n\r\n",
    "control character": b"GET /hostname HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
    "two Host fields": b"GET /hostname HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


@pytest.mark.parametrize("attack", list(SMUGGLING))
async def test_smuggling_attempts_are_rejected_and_never_forwarded(lab: Lab, attack: str) -> None:
    ports = [await lab.backend("pod-a")]
    address, port, _ = await _gateway(
        lab, [{"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}],
        service_docs("web", ports),
    )
    answer = await _raw(address, port, SMUGGLING[attack])
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 501 ")), answer[:100]
    assert b"\nHTTP/1.1 " not in answer  # one answer, then the connection closed
    assert b"Connection: close" in answer
    assert sum(c.total for c in lab.plane.counters().backends.values()) == 0


async def test_pipelined_requests_answered_in_order_and_forwarding_headers(
    lab: Lab, echo_headers: int
) -> None:
    address, port, _ = await _gateway(
        lab, [{"rules": [{"backendRefs": [{"name": "echo", "port": 80}]}]}],
        service_docs("echo", [echo_headers]),
    )
    requests = b"".join(
        f"GET /n/{i} HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 6.6.6.6\r\n"
        f"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\r\n".encode()
        for i in range(5)
    )
    answer = await _raw(address, port, requests, wait=1.0)
    assert [line.split(b" ")[1] for line in answer.split(b"\n") if line.startswith(b"GET /n/")] == [
        f"/n/{i}".encode() for i in range(5)
    ]
    first = answer.split(b"HTTP/1.1 200 OK")[1].decode()
    assert "x-forwarded-for: 127.0.0.1\n" in first  # not trusted: replaced, not appended
    assert "6.6.6.6" not in first
    assert "x-forwarded-proto: http\n" in first
    assert "x-forwarded-host: app.example\n" in first
    assert "forwarded: for=127.0.0.1;host=app.example;proto=http\n" in first
    assert "via: 1.1 seaway\n" in first
    assert "x-hop" not in first  # named in Connection: hop-by-hop


async def test_trusted_proxy_headers_are_extended(lab: Lab, echo_headers: int) -> None:
    trust = {"apiVersion": "seaway.io/v1alpha1", "kind": "SeawayConfig",
             "metadata": {"name": "seaway"},
             "spec": {"http": {"trustedProxies": ["127.0.0.0/8"]}}}
    address, port, _ = await _gateway(
        lab, [{"rules": [{"backendRefs": [{"name": "echo", "port": 80}]}]}],
        service_docs("echo", [echo_headers]), [trust],
    )
    code, body = await _curl("-H", "X-Forwarded-For: 6.6.6.6", f"http://{address}:{port}/")
    assert code == 200
    assert "x-forwarded-for: 6.6.6.6, 127.0.0.1\n" in body


async def test_filters_rewrite_headers_and_redirect(lab: Lab, echo_headers: int) -> None:
    routes = [
        {"rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
             "filters": [
                 {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                     "set": [{"name": "X-Env", "value": "prod"}], "remove": ["X-Drop"]}},
                 {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                     "add": [{"name": "X-Served-By", "value": "seaway"}]}},
                 {"type": "URLRewrite", "urlRewrite": {
                     "hostname": "internal", "path": {"type": "ReplacePrefixMatch",
                                                      "replacePrefixMatch": "/v2"}}},
             ],
             "backendRefs": [{"name": "echo", "port": 80}]},
            {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
             "filters": [{"type": "RequestRedirect", "requestRedirect": {
                 "hostname": "new.example", "statusCode": 301}}]},
        ]},
    ]
    address, port, _ = await _gateway(lab, routes, service_docs("echo", [echo_headers]))
    async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:
        r = await client.get(f"http://{address}:{port}/api/items?x=1",
                             headers={"X-Env": "dev", "X-Drop": "1"})
        assert r.status_code == 200
        assert r.text.startswith("GET /v2/items?x=1\n")
        assert "host: internal\n" in r.text
        assert "x-env: prod\n" in r.text and "x-drop" not in r.text
        assert r.headers["x-served-by"] == "seaway"
        r = await client.get(f"http://{address}:{port}/old?q=1")
        assert r.status_code == 301
        assert r.headers["location"] == f"http://new.example:{port}/old?q=1"


async def test_error_statuses_are_short_and_clear(lab: Lab) -> None:
    closed_port = _free_port("127.0.0.1")  # nothing listens there
    routes = [{"rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/down"}}],
         "backendRefs": [{"name": "down", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/empty"}}],
         "backendRefs": [{"name": "empty", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/missing"}}],
         "backendRefs": [{"name": "missing", "port": 80}]},
    ]}]
    address, port, _ = await _gateway(
        lab, routes, [*service_docs("down", [closed_port]), *service_docs("empty", [])]
    )
    code, body = await _curl(f"http://{address}:{port}/down")
    assert code == 502 and "cannot connect" in body
    code, body = await _curl(f"http://{address}:{port}/empty")
    assert code == 503 and "no backend available" in body
    code, body = await _curl(f"http://{address}:{port}/missing")
    assert code == 500 and "not found" in body
    code, body = await _curl(f"http://{address}:{port}/nowhere")
    assert code == 404
    assert all(len(b) < 200 for b in (body,))


async def test_slow_header_gets_408(lab: Lab) -> None:
    fast = {"apiVersion": "seaway.io/v1alpha1", "kind": "SeawayConfig",
            "metadata": {"name": "seaway"}, "spec": {"http": {"headerTimeoutSeconds": 0.3}}}
    ports = [await lab.backend("pod-a")]
    address, port, _ = await _gateway(
        lab, [{"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}],
        service_docs("web", ports), [fast],
    )
    answer = await _raw(address, port, b"GET /hostname HTTP/1.1\r\nHost: h\r\n", wait=2.0)
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_limits_answer_414_and_431(lab: Lab) -> None:
    ports = [await lab.backend("pod-a")]
    address, port, _ = await _gateway(
        lab, [{"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}],
        service_docs("web", ports),
    )
    long_uri = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    assert (await _raw(address, port, long_uri)).startswith(b"HTTP/1.1 414 ")
    many = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(
        b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n"
    assert (await _raw(address, port, many)).startswith(b"HTTP/1.1 431 ")


# -- WebSocket ---------------------------------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


async def _ws_echo_backend() -> tuple[asyncio.Server, int]:
    """A minimal RFC 6455 server: handshake, then echoes each text frame."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            while True:
                b0, b1 = await reader.readexactly(2)
                length = b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                mask = await reader.readexactly(4)
                masked = await reader.readexactly(length)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
                if b0 & 0x0F == 8:
                    break
                writer.write(bytes([0x81, len(data)]) + data)  # short frames only
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _ws_roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        text: str) -> str:
    payload = text.encode()
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    await writer.drain()
    _, b1 = await asyncio.wait_for(reader.readexactly(2), IO_TIMEOUT)
    return (await asyncio.wait_for(reader.readexactly(b1 & 0x7F), IO_TIMEOUT)).decode()


async def test_websocket_stays_open_across_50_configuration_changes(lab: Lab) -> None:
    ws_server, ws_port = await _ws_echo_backend()
    other = await lab.backend("pod-a")
    try:
        address, port, docs = await _gateway(
            lab, [{"rules": [{"backendRefs": [{"name": "ws", "port": 80}]}]}],
            [*service_docs("ws", [ws_port]), *service_docs("other", [other])],
        )
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), IO_TIMEOUT)
        try:
            key = base64.b64encode(os.urandom(16))
            writer.write(b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
            assert head.startswith(b"HTTP/1.1 101 ")
            expected = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            assert b"Sec-WebSocket-Accept: " + expected in head
            for i in range(50):
                # Each change: the route's backends, and the routes themselves, change.
                route = {"rules": [{"matches": [{"path": {"type": "PathPrefix",
                                                          "value": f"/v{i}"}}],
                                    "backendRefs": [{"name": "other", "port": 80}]},
                                   {"backendRefs": [{"name": "ws", "port": 80}]}]}
                changed = [d for d in docs if d["kind"] != "HTTPRoute"]
                changed += gateway_docs(port, address, [route])[2:]
                if i % 2:
                    changed = [d for d in changed if d["metadata"]["name"] != "other-0"]
                result = await lab.plane.apply(config_from(changed))
                assert not result.errors
                assert await _ws_roundtrip(reader, writer, f"message {i}") == f"message {i}"
            async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:
                r = await client.get(f"http://{address}:{port}/v49/hostname")
                assert r.status_code == 503  # "other" lost its endpoint in the last change
        finally:
            writer.close()
    finally:
        ws_server.close()
