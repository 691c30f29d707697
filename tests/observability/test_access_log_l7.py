"""Request access logs of the HTTP proxy: a real `seaway run` serving an Ingress, real
backends, requests over HTTP/1.1 and HTTP/2, and the log file read back."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from seaway.accesslog import MAX_LOGGED_TARGET, RequestRecord
from seaway.testing.processes import (
    Backend,
    Processes,
    free_port,
    seaway_config,
    start_backend,
    start_seaway,
    tcp_ready,
    wait_until,
    write_manifests,
)

TIMEOUT = 3.0
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _slices(service: str, backends: list[Backend]) -> list[dict[str, Any]]:
    """One EndpointSlice per backend (each listens on a port of its own); none: one empty."""
    return [
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{service}-{i}",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": b.port if b is not None else 1}],
            "endpoints": (
                [{"addresses": [b.host], "conditions": {"ready": True}}] if b is not None else []
            ),
        }
        for i, b in enumerate(backends or [None])
    ]


def _path(prefix: str, service: str) -> dict[str, Any]:
    return {
        "path": prefix,
        "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"name": "http"}}},
    }


def _manifests(
    pool: str, ingress_port: int, backends: list[Backend], **config: Any
) -> list[dict[str, Any]]:
    """web.example: "/" to Service web (``backends``), "/empty" to Service empty (none)."""
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }
        for name in ("web", "empty")
    ]
    return [
        seaway_config(pool, ingress={"port": ingress_port}, **config),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "seaway"},
            "spec": {"controller": "seaway.io/ingress-controller"},
        },
        *services,
        *_slices("web", backends),
        *_slices("empty", []),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "ingressClassName": "seaway",
                "rules": [
                    {
                        "host": "web.example",
                        "http": {"paths": [_path("/empty", "empty"), _path("/", "web")]},
                    }
                ],
            },
        },
    ]


def _ingress_address(lb: Any, port: int) -> str:
    def address() -> str | None:
        ingresses = lb.state()["ingresses"]
        if not ingresses:
            return None
        return str(ingresses[0]["status"]["loadBalancer"]["ingress"][0]["ip"])

    ip = str(wait_until(address, timeout=5))
    wait_until(lambda: tcp_ready(ip, port), timeout=5)
    return ip


def _lines(path: Path, count: int) -> list[str]:
    def enough() -> list[str] | None:
        lines = path.read_text().splitlines() if path.exists() else []
        return lines if len(lines) >= count else None

    return list(wait_until(enough, timeout=5))


def test_json_line_per_request_over_http1_and_http2_with_local_answers(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    port = free_port()
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, _manifests("127.243.20.0/24", port, backends))
    access = tmp_path / "access.log"
    lb = start_seaway(processes, tmp_path, manifest, extra_args=["--access-log", str(access)])
    ip = _ingress_address(lb, port)
    base = f"http://{ip}:{port}"
    headers = {"Host": "web.example"}

    with httpx.Client(timeout=TIMEOUT) as client:  # HTTP/1.1, one keep-alive connection
        first = client.get(f"{base}/hostname?probe=1", headers=headers)
        echoed = client.post(f"{base}/echo", headers=headers, content=b"hello, log")
        unrouted = client.get(f"{base}/x", headers={"Host": "nowhere.example"})
        empty = client.get(f"{base}/empty/y", headers=headers)
    assert (first.status_code, echoed.content) == (200, b"hello, log")
    assert (unrouted.status_code, empty.status_code) == (404, 503)
    with httpx.Client(timeout=TIMEOUT, http1=False, http2=True) as h2:  # h2c, prior knowledge
        over_h2 = h2.get(f"{base}/hostname", headers=headers)
    assert (over_h2.status_code, over_h2.http_version) == (200, "HTTP/2")

    records = [json.loads(line) for line in _lines(access, 5)]
    assert all(r["type"] == "request" for r in records)
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("GET", "/hostname?probe=1", 200),
        ("POST", "/echo", 200),
        ("GET", "/x", 404),
        ("GET", "/empty/y", 503),
        ("GET", "/hostname", 200),
    ]
    backend_keys = {f"{b.host}:{b.port}" for b in backends}
    listener = f"HTTP/{ip}:{port}"
    for r in records:
        assert r["listener"] == listener
        assert re.fullmatch(r"127\.0\.0\.1:\d+", r["client"])
        assert re.fullmatch(ISO, r["start"]) and r["start"] <= r["end"]
        assert 0 <= r["duration_ms"] < 3000
    ok, post, not_found, no_backend, h2_record = records
    assert [r["protocol"] for r in records] == ["HTTP/1.1"] * 4 + ["HTTP/2"]
    assert ok["client"] == post["client"] == not_found["client"]  # one connection
    for r in (ok, post, h2_record):
        assert r["backend"] in backend_keys
        assert r["host"] == "web.example"
        assert r["route"].startswith("Ingress default/web")
        assert 0 <= r["upstream_ttfb_ms"] <= r["duration_ms"]
    assert (ok["request_body_bytes"], ok["response_body_bytes"]) == (0, len(first.content))
    assert (post["request_body_bytes"], post["response_body_bytes"]) == (10, 10)
    assert h2_record["response_body_bytes"] == len(over_h2.content)
    # seaway's own answers: the 404 matched no route, the 503 had no backend to ask.
    assert (not_found["backend"], not_found["route"], not_found["upstream_ttfb_ms"]) == (
        None,
        None,
        None,
    )
    assert not_found["host"] == "nowhere.example"
    assert not_found["response_body_bytes"] == len(unrouted.content) > 0
    assert no_backend["backend"] is None and no_backend["upstream_ttfb_ms"] is None
    assert no_backend["route"].startswith("Ingress default/web")


def test_text_lines_once_the_seaway_config_turns_the_log_on(
    processes: Processes, tmp_path: Path
) -> None:
    backend = start_backend(processes, "pod-0")
    port = free_port()
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, _manifests("127.243.21.0/24", port, [backend]))
    lb = start_seaway(processes, tmp_path, manifest)
    ip = _ingress_address(lb, port)
    base = f"http://{ip}:{port}"
    with httpx.Client(timeout=TIMEOUT, headers={"Host": "web.example"}) as client:
        assert client.get(f"{base}/hostname").status_code == 200  # not logged: log is off

        access = tmp_path / "access.txt"
        config = {"accessLog": {"path": str(access), "format": "text"}}
        write_manifests(manifest, _manifests("127.243.21.0/24", port, [backend], **config))
        wait_until(lambda: "access log: text lines to" in lb.logs(), timeout=5)
        # The same keep-alive connection: the change reaches connections already open.
        assert client.get(f"{base}/echo?msg=hi%20there").text == "hi there"
        assert client.get(f"{base}/missing", headers={"Host": "other.example"}).status_code == 404

    lines = _lines(access, 2)
    assert len(lines) == 2
    pattern = (
        rf'({ISO}) (127\.0\.0\.1:\d+) "(\S+) (\S+) (\S+)" (\d+|-) (\d+) (\d+\.\d)ms (\S+) '
        r'(\S+) (\S+) in=(\d+) ttfb=(\S+) "(.*)"'
    )
    echo = re.fullmatch(pattern, lines[0])
    assert echo is not None, lines[0]
    assert echo.group(3, 4, 5, 6, 7) == ("GET", "/echo?msg=hi%20there", "HTTP/1.1", "200", "8")
    assert echo.group(9) == f"{backend.host}:{backend.port}"
    assert echo.group(10, 11, 12) == (f"HTTP/{ip}:{port}", "web.example", "0")
    assert re.fullmatch(r"\d+\.\dms", echo.group(13))
    assert echo.group(14).startswith("Ingress default/web")
    missing = re.fullmatch(pattern, lines[1])
    assert missing is not None, lines[1]
    assert missing.group(4, 6, 9, 11, 13, 14) == ("/missing", "404", "-", "other.example", "-", "-")


def test_text_format_escapes_fields_and_caps_long_targets() -> None:
    record = RequestRecord(
        start=time.time(),
        duration=0.0042,
        protocol="HTTP/2",
        client=("::1", 40000),
        listener="HTTPS/[::1]:443",
        host="",
        method="GET",
        target='/a b"c\\é?' + "q" * 2000,
        status=0,
        backend=None,
        route='HTTPRoute default/r "x" rule 0',
        request_body_bytes=0,
        response_body_bytes=0,
    )
    text = record.as_text()
    request = text.split('"')[1]
    method, target, protocol = request.split(" ")
    assert (method, protocol) == ("GET", "HTTP/2")
    assert target.startswith("/a\\x20b\\x22c\\x5c\\xc3\\xa9?qqq")
    assert target.count("q") == MAX_LOGGED_TARGET - len('/a b"c\\é?')
    fields = text.split(" ")
    assert fields[1] == "[::1]:40000"
    assert fields[5:9] == ["-", "0", "4.2ms", "-"]  # no response, no backend
    assert fields[10] == "-"  # no host
    assert text.endswith(' "HTTPRoute default/r \\x22x\\x22 rule 0"')
    data = record.as_json()
    assert data["status"] is None and data["host"] == ""
    assert len(data["path"]) == MAX_LOGGED_TARGET
