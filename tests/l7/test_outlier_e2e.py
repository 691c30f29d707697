"""L7 outlier detection: a backend answering 503 is ejected after 5 gateway errors in a row."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from seaway.testing.processes import (
    PYTHON,
    Processes,
    free_port,
    http_request,
    ingress_manifests,
    seaway_config,
    start_seaway,
    tcp_ready,
    wait_until,
    write_manifests,
)


def _manifests(pool: str, ingress_port: int, ports: list[int]) -> list[dict[str, Any]]:
    backends = [("127.0.0.1", port) for port in ports]
    return [
        seaway_config(pool, ingress={"port": ingress_port}),
        *ingress_manifests("web", "web.example", backends),
    ]


def test_backend_answering_503_is_ejected_after_five_in_a_row(
    processes: Processes, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    for name, port, extra in (("good", ports[0], []), ("failing", ports[1], ["--not-ready"])):
        processes.start(
            PYTHON,
            "-m",
            "seaway",
            "backend",
            "--listen",
            f"127.0.0.1:{port}",
            "--name",
            name,
            *extra,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda port=port: tcp_ready("127.0.0.1", port))
    ingress_port = free_port()
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, _manifests("127.242.9.0/24", ingress_port, ports))
    lb = start_seaway(processes, tmp_path, manifest)
    (ingress,) = lb.state()["ingresses"]
    address = ingress["status"]["loadBalancer"]["ingress"][0]["ip"]
    wait_until(lambda: tcp_ready(address, ingress_port))

    statuses = [
        http_request(address, ingress_port, "/readyz", host_header="web.example")[0]
        for _ in range(40)
    ]
    # Round-robin alternates; the failing backend answers 503 until its fifth one in a
    # row ejects it (Envoy's consecutive gateway failure default), then only 200s.
    assert statuses.count(503) == 5, statuses
    assert set(statuses[-20:]) == {200}, statuses
