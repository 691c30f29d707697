"""Bearer-token authentication of the admin API, with real sockets and httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seaway.admin.auth import AdminAuthError, BearerAuth, is_loopback_host, read_token_file
from seaway.admin.server import AdminAddressError, AdminAuthRequired, AdminServer

TIMEOUT = 5.0
TOKEN = "s3cret-token-0123456789"


def state() -> dict[str, Any]:
    return {"version": "0.1.0", "services": []}


@pytest.fixture
async def admin() -> AsyncIterator[AdminServer]:
    server = AdminServer("127.0.0.1:0", state, ready=lambda: True, token=TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_data_needs_the_token_probes_and_page_do_not(admin: AdminServer) -> None:
    base = f"http://{admin.bound_address}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        anonymous = await client.get(f"{base}/api/v1/state")
        wrong = await client.get(f"{base}/api/v1/state", headers={"Authorization": "Bearer nope"})
        basic = await client.get(f"{base}/api/v1/state", auth=("user", TOKEN))
        right = await client.get(
            f"{base}/api/v1/state", headers={"Authorization": f"bearer {TOKEN}"}
        )
        probes = [(await client.get(f"{base}{p}")).status_code for p in ("/healthz", "/readyz")]
        page = await client.get(f"{base}/")
    assert anonymous.status_code == wrong.status_code == basic.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="seaway"'
    assert "--admin-token-file" in anonymous.text
    assert right.status_code == 200
    assert right.json()["version"] == "0.1.0"
    assert probes == [200, 200]
    assert page.status_code == 200
    assert "<title>seaway status</title>" in page.text


async def test_non_loopback_address_without_token_is_refused_before_binding() -> None:
    server = AdminServer("0.0.0.0:0", state, ready=lambda: True)
    with pytest.raises(AdminAuthRequired, match="not a loopback address") as caught:
        await server.start()
    assert isinstance(caught.value, AdminAddressError)
    assert "--admin-token-file" in str(caught.value)
    with pytest.raises(RuntimeError, match="not listening"):  # nothing was bound
        _ = server.bound_address
    await server.close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("admin.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_token_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text(f"  {TOKEN}\n")
    assert read_token_file(good) == TOKEN
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(AdminAuthError, match="is empty"):
        read_token_file(empty)
    with pytest.raises(AdminAuthError, match="cannot read the admin token file"):
        read_token_file(tmp_path / "missing")
    spaced = tmp_path / "spaced"
    spaced.write_text("two words")
    with pytest.raises(AdminAuthError, match="whitespace"):
        read_token_file(spaced)


def test_bearer_auth_accepts_only_the_exact_token() -> None:
    auth = BearerAuth(TOKEN)
    assert auth.allows(f"Bearer {TOKEN}")
    assert auth.allows(f"BEARER   {TOKEN} ")
    assert not auth.allows(None)
    assert not auth.allows(f"Bearer {TOKEN}x")
    assert not auth.allows(f"Basic {TOKEN}")
    assert not auth.allows("Bearer")
