"""TLS termination end to end: a CA the tests create, real TLS clients (Python ssl, httpx
with HTTP/2, curl), certificates from kubernetes.io/tls Secrets."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.l7.conftest import IO_TIMEOUT, Lab, config_from, next_address, service_docs
from tests.l7.tls_authority import Authority, peer_common_name, tls_secret

from seaway.http1 import HTTPServer, Request, Response
from seaway.model.errors import InvalidConfiguration
from seaway.model.parse import parse_text
from seaway.model.validate import build_state


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority.create()


@pytest.fixture
async def echo_headers() -> AsyncIterator[int]:
    """A backend answering with the request's header fields."""

    async def handle(request: Request) -> Response:
        lines = [f"{name.lower()}: {value}" for name, value in request.headers]
        return Response.text(200, "\n".join(lines) + "\n")

    server = HTTPServer(handle)
    await server.start("127.0.0.1:0")
    try:
        yield int(server.bound_address.rsplit(":", 1)[1])
    finally:
        await server.close()


def ingress_docs(
    address: str, port: int, tls_port: int, tls: list[dict[str, Any]], backend_port: int
) -> list[dict[str, Any]]:
    """seaway's IngressClass, settings placing the Ingress listener, and one Ingress."""
    return [
        {
            "apiVersion": "seaway.io/v1alpha1",
            "kind": "SeawayConfig",
            "metadata": {"name": "default"},
            "spec": {"ingress": {"address": address, "port": port, "tlsPort": tls_port}},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "seaway"},
            "spec": {"controller": "seaway.io/ingress-controller"},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "site", "namespace": "default"},
            "spec": {
                "ingressClassName": "seaway",
                "tls": tls,
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "web", "port": {"number": 80}}
                                    },
                                }
                            ]
                        }
                    }
                ],
            },
        },
        *service_docs("web", [backend_port]),
    ]


async def _handshake(
    ca: Authority, address: str, port: int, server_name: str | None, alpn: list[str]
) -> tuple[str, str | None, str | None]:
    """(CN presented, ALPN chosen, TLS version) of one handshake."""
    context = ca.client_context(alpn)
    context.check_hostname = False  # the chain is verified; which certificate is checked here
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(address, port, ssl=context, server_hostname=server_name),
        IO_TIMEOUT,
    )
    try:
        obj = writer.get_extra_info("ssl_object")
        return peer_common_name(obj), obj.selected_alpn_protocol(), obj.version()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_sni_chooses_exact_then_wildcard_then_default(lab: Lab, ca: Authority) -> None:
    backend = await lab.backend("a")
    address = next_address()
    port, tls_port = _free_port(address), _free_port(address)
    exact = ca.issue("exact", ["shop.example.test"])
    wild = ca.issue("wildcard", ["*.example.test"])
    default = ca.issue("default", ["fallback.test"])
    docs = [
        *ingress_docs(
            address, port, tls_port,
            [
                {"hosts": ["shop.example.test"], "secretName": "exact"},
                {"hosts": ["*.example.test"], "secretName": "wild"},
                {"secretName": "default"},
            ],
            backend,
        ),
        tls_secret("exact", *exact),
        tls_secret("wild", *wild),
        tls_secret("default", *default),
    ]
    result = await lab.plane.apply(config_from(docs))
    assert not result.errors
    assert (await _handshake(ca, address, tls_port, "shop.example.test", ["h2"]))[0] == "exact"
    assert (await _handshake(ca, address, tls_port, "api.example.test", ["h2"]))[0] == "wildcard"
    # One label only for a wildcard (RFC 6125): a.b.example.test gets the default.
    for name in ("a.b.example.test", None):
        cn, _, _ = await _handshake(ca, address, tls_port, name, ["http/1.1"])
        assert cn == "default"
    _, alpn, version = await _handshake(ca, address, tls_port, "shop.example.test", ["h2"])
    assert alpn == "h2" and version in ("TLSv1.2", "TLSv1.3")
    _, alpn, _ = await _handshake(ca, address, tls_port, "shop.example.test", ["http/1.1"])
    assert alpn == "http/1.1"


async def test_old_protocol_versions_and_weak_ciphers_are_refused(lab: Lab, ca: Authority) -> None:
    backend = await lab.backend("a")
    address = next_address()
    port, tls_port = _free_port(address), _free_port(address)
    docs = [
        *ingress_docs(address, port, tls_port, [{"secretName": "site"}], backend),
        tls_secret("site", *ca.issue("site", ["site.test"])),
    ]
    assert not (await lab.plane.apply(config_from(docs))).errors
    old = ca.client_context()
    old.check_hostname = False
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is the point here
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.wait_for(
            asyncio.open_connection(address, tls_port, ssl=old, server_hostname="site.test"),
            IO_TIMEOUT,
        )
    weak = ca.client_context()
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA")  # RSA key exchange, CBC: not offered by seaway
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.wait_for(
            asyncio.open_connection(address, tls_port, ssl=weak, server_hostname="site.test"),
            IO_TIMEOUT,
        )


async def test_httpx_http2_and_curl_over_tls_with_forwarded_proto_https(
    lab: Lab, ca: Authority, echo_headers: int, tmp_path: Path
) -> None:
    address = next_address()
    port, tls_port = _free_port(address), _free_port(address)
    cert, key = ca.issue("site", ["site.test"])
    docs = [
        *ingress_docs(address, port, tls_port, [{"hosts": ["site.test"], "secretName": "s"}],
                      echo_headers),
        tls_secret("s", cert, key),
    ]
    assert not (await lab.plane.apply(config_from(docs))).errors
    transport = httpx.AsyncHTTPTransport(
        http2=True, verify=ca.client_context(), local_address="127.0.0.1"
    )
    async with httpx.AsyncClient(transport=transport, timeout=IO_TIMEOUT) as client:
        response = await client.get(
            f"https://{address}:{tls_port}/", headers={"Host": "site.test"},
            extensions={"sni_hostname": "site.test"},
        )
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert "x-forwarded-proto: https\n" in response.text
    assert "proto=https" in response.text
    # The plain listener still says http.
    async with httpx.AsyncClient(timeout=IO_TIMEOUT) as client:
        plain = await client.get(f"http://{address}:{port}/", headers={"Host": "site.test"})
    assert "x-forwarded-proto: http\n" in plain.text

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.pem)
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--http2", "--cacert", str(ca_file), "--max-time", "5",
        "--resolve", f"site.test:{tls_port}:{address}",
        "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
        f"https://site.test:{tls_port}/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert out.decode() == "2 200", err.decode()


async def test_certificate_swap_keeps_open_connections(lab: Lab, ca: Authority) -> None:
    backend = await lab.backend("a")
    address = next_address()
    port, tls_port = _free_port(address), _free_port(address)
    base = ingress_docs(address, port, tls_port, [{"secretName": "s"}], backend)
    await lab.plane.apply(config_from([*base, tls_secret("s", *ca.issue("first", ["s.test"]))]))

    context = ca.client_context(["http/1.1"])
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(address, tls_port, ssl=context, server_hostname="s.test"),
        IO_TIMEOUT,
    )
    try:
        assert peer_common_name(writer.get_extra_info("ssl_object")) == "first"
        request = b"GET / HTTP/1.1\r\nHost: s.test\r\n\r\n"
        writer.write(request)
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        assert first.startswith(b"HTTP/1.1 200")
        await asyncio.wait_for(reader.readexactly(1), IO_TIMEOUT)  # the body: "a"

        result = await lab.plane.apply(
            config_from([*base, tls_secret("s", *ca.issue("second", ["s.test"]))])
        )
        assert not result.errors
        # New handshakes get the new certificate ...
        assert (await _handshake(ca, address, tls_port, "s.test", []))[0] == "second"
        # ... and the open connection goes on.
        writer.write(request)
        again = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        assert again.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_bad_or_mismatched_key_is_an_error_and_the_previous_certificate_serves(
    lab: Lab, ca: Authority
) -> None:
    backend = await lab.backend("a")
    address = next_address()
    port, tls_port = _free_port(address), _free_port(address)
    base = ingress_docs(address, port, tls_port, [{"secretName": "s"}], backend)
    good_cert, good_key = ca.issue("good", ["s.test"])
    await lab.plane.apply(config_from([*base, tls_secret("s", good_cert, good_key)]))

    other_cert, _ = ca.issue("other", ["s.test"])
    cases = {
        "mismatched": (tls_secret("s", other_cert, good_key), "data[tls.key]", "does not belong"),
        "garbage": (tls_secret("s", b"not a certificate", good_key), "data[tls.crt]", "PEM"),
        "bad base64": (
            {**tls_secret("s", good_cert, good_key), "data": {"tls.crt": "@@@", "tls.key": "x"}},
            "data[tls.crt]",
            "base64",
        ),
    }
    for secret, field, words in cases.values():
        result = parse_text(yaml.safe_dump_all([*base, secret]), "site.yaml")
        errors = [e for e in result.errors if e.obj == "Secret default/s"]
        assert errors, result.errors
        assert errors[0].field == field and words in errors[0].message, errors[0]
        with pytest.raises(InvalidConfiguration, match="Secret default/s"):
            build_state([result])
    # Nothing was applied: the good certificate still serves.
    assert (await _handshake(ca, address, tls_port, "s.test", []))[0] == "good"


async def test_gateway_https_listener_with_certificate_refs(lab: Lab, ca: Authority) -> None:
    backend = await lab.backend("a")
    address = next_address()
    port = _free_port(address)
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "seaway"},
            "spec": {"controllerName": "seaway.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default"},
            "spec": {
                "gatewayClassName": "seaway",
                "addresses": [{"type": "IPAddress", "value": address}],
                "listeners": [
                    {
                        "name": "https", "port": port, "protocol": "HTTPS",
                        "hostname": "gw.test",
                        "tls": {"mode": "Terminate", "certificateRefs": [{"name": "gw-cert"}]},
                    },
                ],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}],
                     "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]},
        },
        *service_docs("web", [backend]),
        tls_secret("gw-cert", *ca.issue("gateway", ["gw.test"])),
    ]
    config = config_from(docs)
    assert f"HTTPS/{address}:{port}" in config.http_listeners
    assert not (await lab.plane.apply(config)).errors
    transport = httpx.AsyncHTTPTransport(http2=True, verify=ca.client_context())
    async with httpx.AsyncClient(transport=transport, timeout=IO_TIMEOUT) as client:
        response = await client.get(
            f"https://{address}:{port}/", headers={"Host": "gw.test"},
            extensions={"sni_hostname": "gw.test"},
        )
    assert (response.http_version, response.status_code, response.text) == ("HTTP/2", 200, "a")

    # A reference to a missing Secret: the listener is not programmed, with the reason.
    missing = [d for d in docs if d["kind"] != "Secret"]
    gateway = config_from(missing).routes.gateways[0]
    conditions = {c.type: c for c in gateway.listeners[0].conditions}
    assert conditions["Accepted"].reason == "InvalidCertificateRef"
    assert "gw-cert not found" in conditions["Accepted"].message
