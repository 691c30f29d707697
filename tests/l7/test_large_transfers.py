"""`seaway run` as a real process: Ingress status in `seaway status -o json`, and 1 GiB
up and down through the L7 proxy with bounded memory (RSS read from /proc)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from seaway.testing.processes import (
    PYTHON,
    Processes,
    free_port,
    seaway_config,
    start_seaway,
    tcp_ready,
    wait_until,
    write_manifests,
)

GIB = 1024 * 1024 * 1024
CHUNK = 1024 * 1024
# The proxy may grow by less than this while moving 1 GiB each way (issue 5).
MAX_GROWTH = 64 * 1024 * 1024


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _read_response(sock: socket.socket) -> tuple[bytes, int]:
    """The head, and how many body bytes followed (Content-Length framing)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    received = len(rest)
    while received < length:
        chunk = sock.recv(CHUNK)
        assert chunk, "connection closed in the middle of the body"
        received += len(chunk)
    return head, received


def _manifests(pool: str, ingress_port: int, backend_port: int) -> list[dict[str, Any]]:
    return [
        seaway_config(pool, ingress={"port": ingress_port}),
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": "seaway"}, "spec": {"controller": "seaway.io/ingress-controller"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bulk"},
         "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend_port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "bulk-1", "labels": {"kubernetes.io/service-name": "bulk"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": backend_port}],
         "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "bulk", "namespace": "default"},
         "spec": {"ingressClassName": "seaway", "rules": [{"host": "bulk.example", "http": {
             "paths": [{"path": "/", "pathType": "Prefix", "backend": {
                 "service": {"name": "bulk", "port": {"name": "http"}}}}]}}]}},
    ]


def test_ingress_status_and_one_gib_each_way(processes: Processes, tmp_path: Path) -> None:
    backend_port = free_port()
    processes.start(PYTHON, str(Path(__file__).with_name("bulk_backend.py")), str(backend_port))
    wait_until(lambda: tcp_ready("127.0.0.1", backend_port))
    ingress_port = free_port()
    manifests = tmp_path / "m.yaml"
    write_manifests(manifests, _manifests("127.242.0.0/24", ingress_port, backend_port))
    seaway = start_seaway(processes, tmp_path, manifests)

    status = subprocess.run(
        [PYTHON, "-m", "seaway", "status", "--admin", seaway.admin, "-o", "json"],
        capture_output=True, text=True, timeout=10, check=True,
    )
    (ingress,) = json.loads(status.stdout)["ingresses"]
    (lb,) = ingress["status"]["loadBalancer"]["ingress"]
    assert lb["ip"].startswith("127.242.0.")
    assert lb["ports"] == [{"port": ingress_port, "protocol": "TCP"}]
    address = lb["ip"]
    wait_until(lambda: tcp_ready(address, ingress_port))

    with socket.create_connection((address, ingress_port), timeout=10) as sock:
        sock.sendall(b"GET /download?n=1024 HTTP/1.1\r\nHost: bulk.example\r\n\r\n")
        _, received = _read_response(sock)  # warm up: buffers, pools, code paths
        assert received == 1024
        baseline = _rss(seaway.proc.pid)
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], _rss(seaway.proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            started = time.monotonic()
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: bulk.example\r\n"
                         b"Content-Length: %d\r\n\r\n" % GIB)
            zeros = bytes(CHUNK)
            for _ in range(GIB // CHUNK):
                sock.sendall(zeros)
            head, _ = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: bulk.example\r\n\r\n" % GIB)
            head, received = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert received == GIB
            elapsed = time.monotonic() - started
        finally:
            done.set()
            sampler.join(5)
    assert peak[0] - baseline < MAX_GROWTH, (baseline, peak[0])
    assert elapsed < 60
