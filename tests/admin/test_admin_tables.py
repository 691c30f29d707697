"""``render_status``: the admin state as kubectl-like tables."""

from __future__ import annotations

import re
from typing import Any

from seaway.admin.tables import render_status


def endpoint(address: str, name: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "address": address, "port": 8081, "name": name, "node": "node-a", "zone": None,
        "ready": True, "serving": True, "terminating": False, "usable": True, "reason": "",
        "active": 0, "total": 12, "failed": 0,
    }
    values.update(overrides)
    return values


def sample() -> dict[str, Any]:
    return {
        "version": "0.1.0",
        "generation": 3,
        "appliedAt": "2026-11-22T19:00:00Z",
        "lastError": {
            "at": "2026-11-22T19:05:00Z",
            "errors": [
                {"source": "a.yaml#2", "object": "Service default/web",
                 "field": "spec.ports[0].port", "message": "must be between 1 and 65535"}
            ],
        },
        "notes": ["a.yaml#4: kind Deployment is not read by seaway; skipped"],
        "listenerErrors": {"TCP/127.240.0.1:80": "address in use"},
        "services": [
            {
                "namespace": "default", "name": "web", "type": "LoadBalancer", "message": "",
                "status": {"loadBalancer": {"ingress": [{"ip": "127.240.0.1"}]}},
                "ports": [
                    {
                        "key": "default/web:80/TCP", "name": "http", "protocol": "TCP",
                        "port": 80, "listeners": ["TCP/127.240.0.1:80"],
                        "algorithm": "maglev", "emptyReason": "",
                        "endpoints": [
                            endpoint("127.0.0.1", "web-1"),
                            endpoint(
                                "fd00::5", "web-2-with-a-long-name", node=None, ready=False,
                                terminating=True, usable=False, active=3, total=1234,
                                reason="terminating\nwhile ready endpoints exist",
                            ),
                        ],
                    }
                ],
            },
            {
                "namespace": "shop", "name": "db", "type": "LoadBalancer",
                "message": "no address left in pool default",
                "status": {"loadBalancer": {}},
                "ports": [
                    {
                        "key": "shop/db:5432/TCP", "name": "", "protocol": "TCP", "port": 5432,
                        "listeners": [], "algorithm": "round-robin",
                        "emptyReason": "no ready endpoints", "endpoints": [],
                    }
                ],
            },
            {
                "namespace": "shop", "name": "dns", "type": "ClusterIP", "message": "",
                "status": {},
                "ports": [
                    {"key": "shop/dns:53/UDP", "name": "dns", "protocol": "UDP", "port": 53,
                     "listeners": [], "algorithm": "maglev", "emptyReason": "",
                     "endpoints": [endpoint("10.0.0.1", "dns-1")]},
                    {"key": "shop/dns:53/TCP", "name": "dns-tcp", "protocol": "TCP", "port": 53,
                     "listeners": [], "algorithm": "maglev", "emptyReason": "",
                     "endpoints": [endpoint("10.0.0.1", "dns-1", usable=False)]},
                ],
            },
        ],
    }


def cells(text: str, first: str) -> list[str]:
    """The cells of the first table row whose first cell is ``first``."""
    for line in text.splitlines():
        row = re.split(r" {3,}", line)
        if row[0] == first:
            return row
    raise AssertionError(f"no row starting with {first!r} in:\n{text}")


def test_service_rows() -> None:
    text = render_status(sample())
    lines = text.splitlines()
    header = lines.index("SERVICES") + 1
    assert re.split(r" {3,}", lines[header]) == [
        "NAMESPACE", "NAME", "TYPE", "EXTERNAL-IP", "PORT(S)", "BACKENDS", "MESSAGE"
    ]
    assert re.split(r" {3,}", lines[header + 1]) == [
        "default", "web", "LoadBalancer", "127.240.0.1", "80/TCP", "1/2"
    ]
    assert re.split(r" {3,}", lines[header + 2]) == [
        "shop", "db", "LoadBalancer", "<pending>", "5432/TCP", "0/0",
        "no address left in pool default",
    ]
    # Ports with different counts show one count each; a ClusterIP has no external IP.
    assert re.split(r" {3,}", lines[header + 3]) == [
        "shop", "dns", "ClusterIP", "<none>", "53/UDP,53/TCP", "1/1,0/1"
    ]


def test_backend_rows_per_port() -> None:
    text = render_status(sample())
    assert "BACKENDS default/web:80/TCP (port http, maglev, on TCP/127.240.0.1:80)" in text
    assert cells(text, "127.0.0.1:8081") == [
        "127.0.0.1:8081", "web-1", "node-a", "true", "true", "false", "yes", "-", "0", "12"
    ]
    assert cells(text, "[fd00::5]:8081") == [
        "[fd00::5]:8081", "web-2-with-a-long-name", "-", "false", "true", "true", "no",
        "terminating while ready endpoints exist", "3", "1234",
    ]
    assert (
        "BACKENDS shop/db:5432/TCP (round-robin, no listener)\nNo backends: no ready endpoints."
    ) in text


def test_columns_are_as_wide_as_their_widest_cell() -> None:
    lines = render_status(sample()).splitlines()
    header = next(line for line in lines if line.startswith("ADDRESS "))
    rows = [line for line in lines if line.startswith(("127.0.0.1:8081", "[fd00::5]:8081"))]
    node = header.index("NODE")
    assert all(row[node:].startswith(("node-a ", "- ")) for row in rows)
    # NAME is as wide as the longest name plus the gap, not wider.
    assert node - header.index("NAME") == len("web-2-with-a-long-name") + 3
    assert all(line == line.rstrip() for line in lines)


def test_errors_and_notes() -> None:
    text = render_status(sample())
    assert text.startswith("seaway 0.1.0, configuration 3, applied 2026-11-22T19:00:00Z\n")
    assert cells(text, "TCP/127.240.0.1:80") == ["TCP/127.240.0.1:80", "address in use"]
    assert "! listener TCP/127.240.0.1:80 is not open: address in use" in text
    assert (
        "LAST ERROR (at 2026-11-22T19:05:00Z: the change was refused; still serving "
        "configuration 3)"
    ) in text
    assert cells(text, "a.yaml#2") == [
        "a.yaml#2", "Service default/web", "spec.ports[0].port", "must be between 1 and 65535"
    ]
    assert text.endswith("NOTES\n- a.yaml#4: kind Deployment is not read by seaway; skipped")


def test_empty_state() -> None:
    text = render_status({"version": "0.1.0", "services": [], "lastError": None, "notes": []})
    assert text == "seaway 0.1.0\n\nSERVICES\nNo services."
