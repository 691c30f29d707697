"""/metrics on a real `seaway run`: scraped with httpx, parsed by Prometheus's own parser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seaway.admin.metrics import MetricsEndpoint, MetricsView, ReloadStats
from seaway.core.config import DesiredConfig
from seaway.dataplane.base import BackendCounters, Counters
from seaway.testing.processes import (
    Processes,
    SeawayProcess,
    http_get,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    wait_until,
    write_manifests,
)

TIMEOUT = 5.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(lb: SeawayProcess) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, labels), and every family's type."""
    response = httpx.get(f"http://{lb.admin}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def by_name(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= k[1]}


def test_metrics_follow_real_traffic_and_reloads(processes: Processes, tmp_path: Path) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "web.yaml"
    docs = [seaway_config("127.243.2.0/24"), *service_manifests("web", backends)]
    for doc in docs[2:]:  # pod-2: not ready, so not used
        for endpoint in doc["endpoints"]:
            if endpoint["targetRef"]["name"] == "pod-2":
                endpoint["conditions"] = {"ready": False}
    write_manifests(manifest, docs)
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    for _ in range(40):
        http_get(ip, 8080)
    wait_until(lambda: lb.state()["listeners"][0]["active"] == 0, timeout=3)

    samples, types = scrape(lb)
    frontend = {"frontend": f"TCP/{ip}:8080", "service": "default/web", "protocol": "TCP"}
    assert types["seaway_frontend_connections"] == "counter"
    assert by_name(samples, "seaway_frontend_connections_total", **frontend)
    assert sum(by_name(samples, "seaway_frontend_connections_total").values()) == 40
    assert sum(by_name(samples, "seaway_frontend_connections_active").values()) == 0
    assert sum(by_name(samples, "seaway_frontend_rejected_total").values()) == 0
    assert list(by_name(samples, "seaway_frontend_up").values()) == [1]

    used = {f"{b.host}:{b.port}" for b in backends[:2]}
    conns = by_name(samples, "seaway_backend_connections_total", service="default/web")
    assert {dict(k)["backend"] for k in conns} == used
    assert all(dict(k)["port"] == "8080/TCP" for k in conns)
    assert sum(conns.values()) == 40
    assert min(conns.values()) >= 8  # Maglev spread 40 connections over both
    assert sum(by_name(samples, "seaway_backend_bytes_in_total").values()) > 40 * 30
    assert sum(by_name(samples, "seaway_backend_bytes_out_total").values()) > 40 * 30
    assert sum(by_name(samples, "seaway_backend_connect_failures_total").values()) == 0
    up = {dict(k)["backend"]: v for k, v in by_name(samples, "seaway_backend_up").items()}
    assert up == {**dict.fromkeys(used, 1.0), f"{backends[2].host}:{backends[2].port}": 0.0}

    assert types["seaway_backend_connect_duration_seconds"] == "histogram"
    counts = by_name(samples, "seaway_backend_connect_duration_seconds_count")
    assert sum(counts.values()) == 40
    inf = by_name(samples, "seaway_backend_connect_duration_seconds_bucket", le="+Inf")
    assert sum(inf.values()) == 40
    # Loopback connects take well under a second.
    one = by_name(samples, "seaway_backend_connect_duration_seconds_bucket", le="1.0")
    assert sum(one.values()) == 40

    assert by_name(samples, "seaway_config_reloads_total", result="success")
    assert list(by_name(samples, "seaway_config_reloads_total", result="success").values()) == [1]
    assert list(by_name(samples, "seaway_config_reloads_total", result="failure").values()) == [0]
    assert by_name(samples, "seaway_config_last_reload_success_timestamp_seconds")
    assert "seaway_backend_requests_total" not in {k[0] for k in samples}  # L4 only: none

    bad = [seaway_config("127.243.2.0/24"), *service_manifests("web", backends, port=70000)]
    write_manifests(manifest, bad)
    wait_until(lambda: lb.state()["lastError"], timeout=3)
    samples, _ = scrape(lb)
    assert list(by_name(samples, "seaway_config_reloads_total", result="failure").values()) == [1]
    assert list(by_name(samples, "seaway_config_last_reload_errors").values()) == [1]


def test_udp_flows_are_a_gauge(processes: Processes, tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    backends = [start_backend(processes, "pod-0")]
    manifest = tmp_path / "dns.yaml"
    write_manifests(
        manifest,
        [seaway_config("127.243.3.0/24"), *service_manifests("dns", backends, protocol="UDP")],
    )
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/dns")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.sendto(b"ping", (ip, 8080))
        assert s.recvfrom(100)[0] == b"ping"  # the backend echoes UDP
        samples, _ = scrape(lb)
    assert list(by_name(samples, "seaway_udp_flows", service="default/dns").values()) == [1]
    assert "seaway_backend_connect_duration_seconds_count" not in {k[0] for k in samples}


def test_request_metrics_appear_once_an_l7_plane_counts_requests() -> None:
    counters = Counters()
    view = MetricsView("0.1.0", DesiredConfig(), counters, ReloadStats(successes=1))
    endpoint = MetricsEndpoint(lambda: view)
    names = {f.name for f in text_string_to_metric_families(endpoint.render().decode())}
    assert "seaway_backend_requests" not in names

    c = counters.backends[("default/web:80/TCP", "10.0.0.1:8000")] = BackendCounters()
    for status, seconds in ((200, 0.004), (204, 0.02), (503, 0.3)):
        c.request_started()
        c.request_finished(status, seconds)
    c.request_started()  # one still in progress
    families = {f.name: f for f in text_string_to_metric_families(endpoint.render().decode())}
    responses = {
        s.labels["code_class"]: s.value for s in families["seaway_backend_responses"].samples
    }
    assert responses == {"2xx": 2, "5xx": 1}
    labels = {"service": "default/web", "port": "80/TCP", "backend": "10.0.0.1:8000"}
    assert families["seaway_backend_requests"].samples[0].labels == labels
    assert families["seaway_backend_requests"].samples[0].value == 3
    assert families["seaway_backend_requests_active"].samples[0].value == 1
    hist = {
        s.labels.get("le"): s.value
        for s in families["seaway_backend_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert (hist["0.005"], hist["0.025"], hist["0.5"], hist["+Inf"]) == (1, 2, 3, 3)


@pytest.mark.parametrize(("value", "bucket"), [(0.0, "0.0005"), (0.0005, "0.0005"), (61.0, "+Inf")])
def test_histogram_bucket_bounds_are_inclusive(value: float, bucket: str) -> None:
    counters = Counters()
    c = counters.backends[("default/web:80/TCP", "10.0.0.1:8000")] = BackendCounters()
    c.connect_duration.observe(value)
    view = MetricsView("0.1.0", DesiredConfig(), counters, ReloadStats())
    text = MetricsEndpoint(lambda: view).render().decode()
    buckets = [
        s
        for f in text_string_to_metric_families(text)
        if f.name == "seaway_backend_connect_duration_seconds"
        for s in f.samples
        if s.name.endswith("_bucket") and s.value == 1
    ]
    assert buckets[0].labels["le"] == bucket
