"""Two seaway processes given the same backends choose the same backend for each flow."""

from __future__ import annotations

import socket
from pathlib import Path

from seaway.testing.processes import (
    Processes,
    free_port,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    write_manifests,
)


def _served_by(ip: str, source: tuple[str, int]) -> str:
    """GET /hostname from a fixed source address and port (a fixed 5-tuple)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(3)
        s.bind(source)
        s.connect((ip, 8080))
        s.sendall(b"GET /hostname HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.partition(b"\r\n\r\n")[2].decode()


def test_two_processes_pick_the_same_backend_for_the_same_flow(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(5)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.241.9.0/24"), *service_manifests("web", backends)]
    )
    sources = [("127.0.0.77", free_port("127.0.0.77")) for _ in range(40)]

    choices = []
    for run in range(2):
        lb = start_seaway(processes, tmp_path, manifest, state_file=tmp_path / f"s{run}.json")
        ip = lb.ingress("default/web")
        choices.append([_served_by(ip, source) for source in sources])
        lb.proc.terminate()
        lb.proc.wait(10)
    assert choices[0] == choices[1]
    assert len(set(choices[0])) >= 4  # and the flows did spread
