"""gRPC through seaway: a real grpcio client on one channel and three grpcio servers
(generic handlers, no code generation); per-stream balancing, the four call shapes,
trailers, deadlines, the errors seaway answers itself, and a backend removed mid-stream."""

from __future__ import annotations

import asyncio
import collections
import queue
import socket
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import httpx
import pytest
from tests.l7.conftest import Lab, config_from, gateway_docs, next_address, service_docs

grpc = pytest.importorskip("grpc")

SERVICE = "test.Echo"
TIMEOUT = 5.0  # every call's deadline


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _grpc_server(name: str) -> tuple[Any, int]:
    def unary(request: bytes, context: Any) -> bytes:
        if request == b"fail":
            context.set_trailing_metadata((("why", "asked-to"),))
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if request == b"slow":
            context.set_trailing_metadata((("x", "y"),))
            import time  # noqa: PLC0415

            time.sleep(2)
        return name.encode()

    def server_stream(request: bytes, context: Any) -> Iterator[bytes]:
        for i in range(5):
            yield f"{name}-{i}".encode()

    def client_stream(requests: Iterator[bytes], context: Any) -> bytes:
        return f"{name}:{sum(len(r) for r in requests)}".encode()

    def bidi(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for r in requests:
            yield name.encode() + b":" + r

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture
def grpc_backends() -> Iterator[dict[str, int]]:
    servers = {name: _grpc_server(name) for name in "abc"}
    try:
        yield {name: port for name, (_, port) in servers.items()}
    finally:
        for server, _ in servers.values():
            server.stop(0).wait(5)


def _docs(ports: list[int], address: str, port: int) -> list[dict[str, Any]]:
    services = service_docs("grpc", ports)
    for doc in services[1:]:  # the EndpointSlice port says h2c (KEP-3726)
        doc["ports"][0]["appProtocol"] = "kubernetes.io/h2c"
    route = {"rules": [{"backendRefs": [{"name": "grpc", "port": 80}]}]}
    return [*services, *gateway_docs(port, address, [route])]


async def _proxy(lab: Lab, ports: list[int]) -> tuple[str, int]:
    address = next_address()
    port = _free_port(address)
    assert not (await lab.plane.apply(config_from(_docs(ports, address, port)))).errors
    return address, port


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.wait_for(asyncio.to_thread(fn, *args), 30)


async def test_unary_calls_on_one_channel_spread_over_three_backends(
    lab: Lab, grpc_backends: dict[str, int]
) -> None:
    address, port = await _proxy(lab, list(grpc_backends.values()))

    def calls() -> collections.Counter[bytes]:
        with grpc.insecure_channel(f"{address}:{port}") as channel:
            unary = channel.unary_unary(f"/{SERVICE}/Unary")
            return collections.Counter(unary(b"hi", timeout=TIMEOUT) for _ in range(300))

    counts = await _in_thread(calls)
    assert set(counts) == {b"a", b"b", b"c"}
    mean = sum(counts.values()) / 3
    assert max(counts.values()) / mean < 1.1, counts


async def test_streaming_in_all_shapes_and_trailers_pass_through(
    lab: Lab, grpc_backends: dict[str, int]
) -> None:
    address, port = await _proxy(lab, list(grpc_backends.values()))

    def calls() -> dict[str, Any]:
        with grpc.insecure_channel(f"{address}:{port}") as channel:
            out: dict[str, Any] = {}
            out["server"] = list(
                channel.unary_stream(f"/{SERVICE}/ServerStream")(b"x", timeout=TIMEOUT)
            )
            out["client"] = channel.stream_unary(f"/{SERVICE}/ClientStream")(
                iter([b"ab", b"cde"]), timeout=TIMEOUT
            )
            out["bidi"] = list(channel.stream_stream(f"/{SERVICE}/Bidi")(
                iter([b"1", b"2", b"3"]), timeout=TIMEOUT
            ))
            try:
                channel.unary_unary(f"/{SERVICE}/Unary")(b"fail", timeout=TIMEOUT)
            except grpc.RpcError as error:
                out["error"] = (error.code(), error.details(), dict(error.trailing_metadata()))
            return out

    out = await _in_thread(calls)
    name = out["server"][0][:1]
    assert out["server"] == [name + f"-{i}".encode() for i in range(5)]
    assert out["client"][1:] == b":5"
    bidi_name = out["bidi"][0][:1]
    assert out["bidi"] == [bidi_name + b":1", bidi_name + b":2", bidi_name + b":3"]
    code, details, trailers = out["error"]
    assert code == grpc.StatusCode.NOT_FOUND and details == "no such thing"
    assert trailers["why"] == "asked-to"


async def test_errors_of_the_proxy_are_grpc_statuses(
    lab: Lab, grpc_backends: dict[str, int]
) -> None:
    out: dict[str, Any] = {}

    def call(address: str, port: int, request: bytes, timeout: float, key: str) -> None:
        with grpc.insecure_channel(f"{address}:{port}") as channel:
            try:
                channel.unary_unary(f"/{SERVICE}/Unary")(request, timeout=timeout)
            except grpc.RpcError as error:
                out[key] = (error.code(), error.details())

    address, port = await _proxy(lab, [])  # a Service without endpoints
    await _in_thread(call, address, port, b"hi", TIMEOUT, "none")
    address, port = await _proxy(lab, [grpc_backends["a"]])
    # The backend takes 2 s; the call's deadline (grpc-timeout) is 0.5 s.
    await _in_thread(call, address, port, b"slow", 0.5, "deadline")
    assert out["none"][0] == grpc.StatusCode.UNAVAILABLE
    assert "no backend available" in out["none"][1]
    assert out["deadline"][0] == grpc.StatusCode.DEADLINE_EXCEEDED
    # Without a client-side deadline, seaway's own: grpc-timeout 300 ms, answered as a
    # trailers-only response (HTTP 200, grpc-status 4) long before the backend replies.
    message = b"slow"
    frame = b"\x00" + len(message).to_bytes(4, "big") + message
    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        started = asyncio.get_running_loop().time()
        response = await client.post(
            f"http://{address}:{port}/{SERVICE}/Unary", content=frame,
            headers={"content-type": "application/grpc", "te": "trailers",
                     "grpc-timeout": "300m"},
        )
        elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "application/grpc"
    assert response.headers["grpc-status"] == "4", response.headers
    assert 0.25 < elapsed < 1.5


async def test_backend_removed_mid_stream_finishes_and_gets_no_new_streams(
    lab: Lab, grpc_backends: dict[str, int]
) -> None:
    address, port = await _proxy(lab, list(grpc_backends.values()))
    loop = asyncio.get_running_loop()
    requests: queue.Queue[bytes | None] = queue.Queue()
    first: asyncio.Future[bytes] = loop.create_future()

    def request_iterator() -> Iterator[bytes]:
        while (item := requests.get(timeout=TIMEOUT)) is not None:
            yield item

    def bidi(channel: Any) -> list[bytes]:
        replies = []
        call = channel.stream_stream(f"/{SERVICE}/Bidi")(request_iterator(), timeout=10)
        for reply in call:
            if not replies:
                loop.call_soon_threadsafe(first.set_result, reply)
            replies.append(reply)
        return replies

    with grpc.insecure_channel(f"{address}:{port}") as channel:
        requests.put(b"1")
        open_call = asyncio.ensure_future(asyncio.to_thread(bidi, channel))
        try:
            reply = await asyncio.wait_for(first, TIMEOUT)
            held = reply.split(b":")[0].decode()
            remaining = [p for n, p in grpc_backends.items() if n != held]
            # The backend leaves the Service (same listener address and port).
            docs = _docs(remaining, address, port)
            assert not (await lab.plane.apply(config_from(docs))).errors
            for item in (b"2", b"3"):
                requests.put(item)

            def more() -> collections.Counter[bytes]:
                unary = channel.unary_unary(f"/{SERVICE}/Unary")
                return collections.Counter(unary(b"x", timeout=TIMEOUT) for _ in range(30))

            counts = await _in_thread(more)
            requests.put(None)
            replies = await asyncio.wait_for(open_call, TIMEOUT)
        finally:
            requests.put(None)
    assert replies == [f"{held}:{i}".encode() for i in (1, 2, 3)]
    assert held.encode() not in counts and sum(counts.values()) == 30
