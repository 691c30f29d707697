"""`seaway top` frames and `seaway explain` text, from admin states as seaway writes them."""

from __future__ import annotations

from typing import Any

import pytest

from seaway.admin.explain import UnknownService, hint, render_explain
from seaway.admin.top import render_top


def _state(totals: list[int], *, requests: list[int] | None = None) -> dict[str, Any]:
    reasons = ["", "ejected", "other node under traffic policy Local"]
    endpoints = []
    for i, total in enumerate(totals):
        ep: dict[str, Any] = {
            "address": "10.0.0.1", "port": 8000 + i, "name": f"pod-{i}", "node": f"n{i}",
            "ready": True, "serving": True, "terminating": False, "usable": i == 0,
            "reason": reasons[i], "active": i, "total": total, "failed": 0,
            "bytesToBackend": total * 100, "bytesFromBackend": total * 2048,
        }  # fmt: skip
        if requests is not None:
            ep["requests"] = requests[i]
        endpoints.append(ep)
    return {
        "version": "0.1.0",
        "generation": 3,
        "lastError": None,
        "services": [
            {
                "namespace": "default",
                "name": "web",
                "type": "LoadBalancer",
                "status": {"loadBalancer": {"ingress": [{"ip": "127.240.0.1"}]}},
                "ports": [
                    {
                        "key": "default/web:80/TCP",
                        "name": "http",
                        "protocol": "TCP",
                        "port": 80,
                        "listeners": ["TCP/127.240.0.1:80"],
                        "algorithm": "ring-hash",
                        "hashOn": "source-ip",
                        "emptyReason": "",
                        "endpoints": endpoints,
                        "sessionAffinity": {"type": "ClientIP", "timeoutSeconds": 10800},
                        "proxyProtocol": "v2",
                    }
                ],
            }
        ],
        "listeners": [
            {
                "key": "TCP/127.240.0.1:80",
                "sourceRanges": ["10.0.0.0/8"],
                "acceptProxyProtocol": False,
            }
        ],
        "listenerErrors": {"TCP/127.240.0.1:80": "cannot listen: address in use"},
    }


def test_top_rates_and_shares_come_from_deltas() -> None:
    frame = render_top(_state([10, 0, 0]), _state([30, 10, 0]), 2.0)
    lines = frame.splitlines()
    assert lines[0] == "seaway 0.1.0, configuration 3; rates over the last 2.0 s"
    rows = {line.split()[3]: line.split() for line in lines if "pod-" in line}
    assert rows["pod-0"][5:8] == ["0", "10.0", "67%"]
    assert rows["pod-1"][5:8] == ["1", "5.0", "33%"]
    assert rows["pod-2"][5:8] == ["2", "0.0", "0%"]
    assert rows["pod-0"][8:10] == ["1000", "B/s"]  # 20 connections x 100 B over 2 s
    assert rows["pod-0"][10:12] == ["20.0", "KiB/s"]
    assert "REQ/S" not in frame


def test_top_without_a_previous_state_and_with_requests() -> None:
    frame = render_top(None, _state([1, 1, 1], requests=[5, 0, 0]), 1.0)
    assert "rates over" not in frame
    assert "REQ/S" in frame
    assert all(" - " in line for line in frame.splitlines() if "pod-" in line)  # no share yet


def test_explain_lists_settings_and_explains_each_reason() -> None:
    text = render_explain(_state([0, 0, 0]), "default/web")
    assert "address: 127.240.0.1" in text
    assert "listener TCP/127.240.0.1:80: NOT OPEN: cannot listen: address in use" in text
    assert "source ranges (loadBalancerSourceRanges): 10.0.0.0/8" in text
    assert "algorithm: ring-hash (hash on source-ip)" in text
    assert "session affinity: ClientIP, 10800 s" in text
    assert "PROXY protocol to backends: v2" in text
    assert "endpoints: 1 of 3 get new connections" in text
    assert "- ejected: outlier detection took it out" in text
    assert "- other node under traffic policy Local: externalTrafficPolicy: Local" in text


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("not ready", "readiness probe"),
        ("terminating", "shutting down"),
        ("terminating and not serving", "no longer serving"),
        ("hinted for another zone (zone-b; this node is in zone-a)", "another zone"),
        ("unhealthy", "health check fails"),
        ("unhealthy (used: panic)", "every backend is used"),
        ("something new", ""),
    ],
)
def test_every_reason_has_a_hint(reason: str, words: str) -> None:
    assert words in hint(reason)
    assert bool(hint(reason)) is bool(words)


def test_unknown_service_names_the_known_ones() -> None:
    with pytest.raises(UnknownService, match=r"no Service default/api .*services: default/web"):
        render_explain(_state([0, 0, 0]), "api")
