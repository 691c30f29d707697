"""`seaway run` end to end: real processes, real files, real clients (curl and sockets)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from seaway.testing.processes import (
    PYTHON,
    Processes,
    free_port,
    http_get,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    wait_until,
    write_manifests,
)

CURL = shutil.which("curl")


def test_connections_spread_over_three_backends_with_curl(
    processes: Processes, tmp_path: Path
) -> None:
    if CURL is None:
        pytest.skip("curl is not installed (scripts/test.sh installs it)")
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.241.1.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    assert ip == "127.241.1.1"  # lowest free address of the pool
    names: Counter[str] = Counter()
    for _ in range(150):
        out = subprocess.run(
            [CURL, "-sS", "--max-time", "3", f"http://{ip}:8080/hostname"],
            capture_output=True,
            check=True,
            timeout=10,
        )
        names[out.stdout.decode().strip()] += 1
    assert set(names) == {"pod-0", "pod-1", "pod-2"}
    # Maglev over 150 distinct 5-tuples: no backend should be starved or dominant.
    assert min(names.values()) >= 25, names
    totals = {ep["name"]: ep["total"] for ep in lb.state()["services"][0]["ports"][0]["endpoints"]}
    assert totals == dict(names)


def test_bad_change_keeps_last_good_config_then_good_change_applies(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    manifest = tmp_path / "web.yaml"
    good = [seaway_config("127.241.2.0/24"), *service_manifests("web", backends)]
    write_manifests(manifest, good)
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")

    bad = [seaway_config("127.241.2.0/24"), *service_manifests("web", backends, port=70000)]
    write_manifests(manifest, bad)
    error = wait_until(lambda: lb.state()["lastError"], timeout=3)
    assert error["errors"][0]["object"] == "Service default/web"
    assert "spec.ports[0].port" in error["errors"][0]["field"]
    assert "still serving the last good" in lb.logs()
    assert http_get(ip, 8080) in {"pod-0", "pod-1"}  # the last good config serves

    write_manifests(
        manifest, [seaway_config("127.241.2.0/24"), *service_manifests("web", backends, port=8081)]
    )
    wait_until(lambda: lb.state()["lastError"] is None, timeout=3)
    assert http_get(ip, 8081) in {"pod-0", "pod-1"}


def test_removed_backend_gets_no_new_connections_within_a_second(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.241.3.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    assert {http_get(ip, 8080) for _ in range(60)} == {"pod-0", "pod-1", "pod-2"}

    write_manifests(
        manifest, [seaway_config("127.241.3.0/24"), *service_manifests("web", backends[:2])]
    )
    changed = time.monotonic()
    wait_until(lambda: len(lb.state()["services"][0]["ports"][0]["endpoints"]) == 2, timeout=1.0)
    assert time.monotonic() - changed < 1.0
    assert {http_get(ip, 8080) for _ in range(60)} == {"pod-0", "pod-1"}


def test_tcp_connection_survives_50_configuration_changes(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.241.4.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    conn = socket.create_connection((ip, 8080), timeout=3)
    try:
        conn.sendall(b"hello before\n")  # raw bytes: the backend echoes them
        assert conn.recv(100) == b"hello before\n"
        start = lb.state()["generation"]
        for i in range(50):
            # Each change alters the backend set (drop a different backend) and the
            # source ranges of the listener.
            subset = [b for j, b in enumerate(backends) if j != i % 3]
            spec = {"loadBalancerSourceRanges": ["127.0.0.0/8", f"10.{i}.0.0/16"]}
            docs = service_manifests("web", subset, extra_spec=spec)
            write_manifests(manifest, [seaway_config("127.241.4.0/24"), *docs])
            wait_until(lambda g=start + i + 1: lb.state()["generation"] >= g, timeout=3)
        conn.sendall(b"still here after 50 changes\n")
        got = b""
        while len(got) < 28:
            got += conn.recv(100)
        assert got == b"still here after 50 changes\n"
    finally:
        conn.close()


def test_udp_round_trip(processes: Processes, tmp_path: Path) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    manifest = tmp_path / "dns.yaml"
    docs = service_manifests("dns", backends, port=5353, protocol="UDP")
    write_manifests(manifest, [seaway_config("127.241.5.0/24"), *docs])
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/dns")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"ping-1", (ip, 5353))
        assert s.recvfrom(100)[0] == b"ping-1"
        s.sendto(b"hostname", (ip, 5353))
        first = s.recvfrom(100)[0]
        s.sendto(b"hostname", (ip, 5353))
        assert s.recvfrom(100)[0] == first  # one flow, one backend
        assert first in {b"pod-0", b"pod-1"}


def test_address_is_kept_across_restarts_and_unrelated_changes(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, "pod-0")]
    services = tmp_path / "services"
    services.mkdir()
    first = services / "a.yaml"
    second = services / "b.yaml"
    config = tmp_path / "config.yaml"
    write_manifests(config, [seaway_config("127.241.6.0/24")])
    write_manifests(first, service_manifests("alpha", backends))
    state_file = tmp_path / "addresses.json"
    lb = start_seaway(processes, tmp_path, config, services, state_file=state_file)
    assert lb.ingress("default/alpha") == "127.241.6.1"
    write_manifests(second, service_manifests("beta", backends))
    wait_until(lambda: len(lb.state()["services"]) == 2, timeout=3)
    assert lb.ingress("default/beta") == "127.241.6.2"

    processes.stop_all()
    processes.procs.clear()
    start_backend(processes, "pod-0")
    lb = start_seaway(processes, tmp_path, config, services, state_file=state_file)
    assert lb.ingress("default/alpha") == "127.241.6.1"
    assert lb.ingress("default/beta") == "127.241.6.2"
    # Removing alpha must not move beta to the now-free lower address, even after a restart.
    first.unlink()
    wait_until(lambda: len(lb.state()["services"]) == 1, timeout=3)
    assert lb.ingress("default/beta") == "127.241.6.2"
    processes.stop_all()
    processes.procs.clear()
    lb = start_seaway(processes, tmp_path, config, services, state_file=state_file)
    assert lb.ingress("default/beta") == "127.241.6.2"


def test_invalid_manifest_at_start_exits_1_and_names_the_field(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: web-1}\naddressType: IPv4\nendpoints: []\nports: []\n"
    )
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "seaway",
            "run",
            "-f",
            str(manifest),
            "--admin",
            f"127.0.0.1:{free_port()}",
            "--state-file",
            str(tmp_path / "s.json"),
        ],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert out.returncode == 1
    assert "kubernetes.io/service-name" in out.stderr.decode()
    assert str(manifest) in out.stderr.decode()


def test_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    write_manifests(good, service_manifests("web", []))
    ok = subprocess.run(
        [PYTHON, "-m", "seaway", "validate", "-f", str(good)],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 0}]}\n"
    )
    no = subprocess.run(
        [PYTHON, "-m", "seaway", "validate", "-f", str(bad)],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert no.returncode == 1
    assert "spec.ports[0].port" in no.stdout.decode()


def test_status_prints_tables_and_kubernetes_shaped_json(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.241.7.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest)
    table = subprocess.run(
        [PYTHON, "-m", "seaway", "status", "--admin", lb.admin],
        capture_output=True,
        timeout=20,
        check=True,
    ).stdout.decode()
    assert "127.241.7.1" in table and "pod-0" in table and "pod-1" in table
    raw = subprocess.run(
        [PYTHON, "-m", "seaway", "status", "--admin", lb.admin, "-o", "json"],
        capture_output=True,
        timeout=20,
        check=True,
    ).stdout.decode()
    state = json.loads(raw)
    assert state["services"][0]["status"] == {"loadBalancer": {"ingress": [{"ip": "127.241.7.1"}]}}


def test_status_without_a_running_seaway_says_so() -> None:
    out = subprocess.run(
        [PYTHON, "-m", "seaway", "status", "--admin", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert out.returncode == 1
    assert "seaway run" in out.stderr.decode()


def test_state_shows_weight_and_a_removed_backend_draining(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, "pod-0")]
    manifest = tmp_path / "web.yaml"
    config = seaway_config("127.241.8.0/24")
    write_manifests(manifest, [config, *service_manifests("web", backends)])
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    (endpoint,) = lb.state()["services"][0]["ports"][0]["endpoints"]
    assert (endpoint["weight"], endpoint["draining"]) == (1, False)
    with socket.create_connection((ip, 8080), timeout=3) as conn:
        conn.sendall(b"x\n")
        assert conn.recv(10) == b"x\n"
        write_manifests(manifest, [config, *service_manifests("web", [])])

        def draining() -> dict[str, Any] | None:
            rows = lb.state()["services"][0]["ports"][0]["endpoints"]
            return next((r for r in rows if r["draining"]), None)

        row = wait_until(draining, timeout=3)
        assert (row["port"], row["active"], row["usable"]) == (backends[0].port, 1, False)
        conn.sendall(b"still\n")  # the drained connection carries on
        assert conn.recv(10) == b"still\n"
    wait_until(lambda: draining() is None, timeout=3)
