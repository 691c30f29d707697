"""The admin API with real sockets: httpx and curl as clients, and seaway's own client."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from seaway.admin.client import AdminAPIError, fetch_state
from seaway.admin.server import AdminAddressError, AdminServer
from seaway.http1 import HTTPServer, Request, Response

TIMEOUT = 5.0  # every network await is bounded by this
CURL = shutil.which("curl")


@dataclass
class Seaway:
    """Stands in for the running app: a state that changes and a readiness flag."""

    ready: bool = True
    generation: int = 0
    services: list[dict[str, Any]] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        self.generation += 1
        return {"version": "0.1.0", "generation": self.generation, "services": self.services}


@pytest.fixture
def app() -> Seaway:
    return Seaway(services=[{"namespace": "default", "name": "web", "ports": []}])


@pytest.fixture
async def admin(app: Seaway) -> AsyncIterator[AdminServer]:
    server = AdminServer("127.0.0.1:0", app.state, ready=lambda: app.ready)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_state_is_json_of_the_current_state(admin: AdminServer) -> None:
    url = f"http://{admin.bound_address}/api/v1/state"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        first = await client.get(url)
        second = await client.get(url)
        head = await client.head(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json()["services"][0]["name"] == "web"
    assert (first.json()["generation"], second.json()["generation"]) == (1, 2)  # asked each time
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0


async def test_healthz_and_readyz(admin: AdminServer, app: Seaway) -> None:
    base = f"http://{admin.bound_address}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.get(f"{base}/healthz")).text == "ok"
        assert (await client.get(f"{base}/readyz")).status_code == 200
        app.ready = False
        assert (await client.get(f"{base}/readyz")).status_code == 503
        assert (await client.get(f"{base}/healthz")).status_code == 200


async def test_unknown_path_is_404_and_writes_are_405(admin: AdminServer) -> None:
    base = f"http://{admin.bound_address}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        missing = await client.get(f"{base}/api/v1/nope")
        post = await client.post(f"{base}/api/v1/state", content=b"{}")
        delete = await client.delete(f"{base}/healthz")
    assert missing.status_code == 404
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
    assert delete.status_code == 405


async def test_hostile_request_gets_400(admin: AdminServer) -> None:
    host, _, port = admin.bound_address.rpartition(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)
    try:
        writer.write(b"GET /api/v1/state HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.transport.abort()
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_address_in_use_is_a_clear_error(admin: AdminServer, app: Seaway) -> None:
    other = AdminServer(admin.bound_address, app.state, ready=lambda: True)
    with pytest.raises(AdminAddressError) as caught:
        await other.start()
    message = str(caught.value)
    assert message.startswith(f"cannot listen on {admin.bound_address} for seaway's admin API:")
    assert "in use" in message
    await other.close()


async def test_malformed_address_is_a_clear_error(app: Seaway) -> None:
    with pytest.raises(AdminAddressError, match="cannot listen on localhost for seaway's admin"):
        await AdminServer("localhost", app.state, ready=lambda: True).start()


async def test_close_stops_listening(app: Seaway) -> None:
    server = AdminServer("127.0.0.1:0", app.state, ready=lambda: True)
    await server.start()
    host, _, port = server.bound_address.rpartition(":")
    await server.close()
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)


async def test_fetch_state_reads_the_running_api(admin: AdminServer) -> None:
    state = await asyncio.wait_for(asyncio.to_thread(fetch_state, admin.bound_address), TIMEOUT)
    assert state["version"] == "0.1.0"
    assert state["services"][0]["namespace"] == "default"


def test_fetch_state_names_the_address_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(AdminAPIError) as caught:
        fetch_state(address, timeout=2)
    assert str(caught.value).startswith(
        f"cannot reach seaway's admin API at {address}: is `seaway run` running?"
    )
    assert isinstance(caught.value, OSError)  # `seaway status` reports OSErrors


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (Response.text(500, "oops"), "answered 500"),
        (Response(200, (), b"<html>"), "invalid JSON"),
        (Response(200, (), b"[1, 2]"), "not an object"),
    ],
)
async def test_fetch_state_refuses_a_bad_answer(response: Response, message: str) -> None:
    async def answer(request: Request) -> Response:
        return response

    server = HTTPServer(answer)
    await server.start("127.0.0.1:0")
    try:
        with pytest.raises(AdminAPIError, match=message):
            await asyncio.wait_for(asyncio.to_thread(fetch_state, server.bound_address), TIMEOUT)
    finally:
        await server.close()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
async def test_curl_reads_the_state(admin: AdminServer) -> None:
    assert CURL is not None
    proc = await asyncio.create_subprocess_exec(
        CURL, "-sS", "--fail", "--max-time", "5", f"http://{admin.bound_address}/api/v1/state",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    assert out.startswith(b'{"version":"0.1.0",')
