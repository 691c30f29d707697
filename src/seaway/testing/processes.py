"""Real `seaway run` and `seaway backend` processes on loopback, for tests and benchmarks.

Every process started through ``Processes`` is stopped by ``stop_all`` (the pytest
fixture ``processes`` calls it at teardown, also when a test fails).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PYTHON = sys.executable


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (OSError, ValueError, KeyError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last error: {last_exc})")


def stop_process(proc: subprocess.Popen[bytes], wait_seconds: float = 5.0) -> None:
    """End ``proc`` if it still runs: SIGTERM, then SIGKILL after ``wait_seconds``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(wait_seconds)


@dataclass
class Processes:
    """Every process a test started; all are stopped at teardown, also on failure."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, **kwargs)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)


def tcp_ready(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


@dataclass
class Backend:
    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]


def start_backend(processes: Processes, name: str, host: str = "127.0.0.1") -> Backend:
    port = free_port(host)
    proc = processes.start(
        PYTHON,
        "-m",
        "seaway",
        "backend",
        "--listen",
        f"{host}:{port}",
        "--name",
        name,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: tcp_ready(host, port))
    return Backend(name, host, port, proc)


def service_manifests(
    name: str,
    backends: list[Backend],
    *,
    port: int = 8080,
    protocol: str = "TCP",
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A LoadBalancer Service and its EndpointSlice, as users write them."""
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"name": "main", "protocol": protocol, "port": port, "targetPort": 8000}],
            **(extra_spec or {}),
        },
    }
    ports = {b.port for b in backends}
    slices = []
    for i, backend_port in enumerate(sorted(ports) or [1]):
        slices.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-{i}",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "ports": [{"name": "main", "protocol": protocol, "port": backend_port}],
                "endpoints": [
                    {
                        "addresses": [b.host],
                        "conditions": {"ready": True},
                        "targetRef": {"kind": "Pod", "namespace": namespace, "name": b.name},
                    }
                    for b in backends
                    if b.port == backend_port
                ],
            }
        )
    return [service, *slices]


def seaway_config(pool: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "seaway.io/v1alpha1",
        "kind": "SeawayConfig",
        "metadata": {"name": "seaway"},
        "spec": {"loopbackPool": pool, **spec},
    }


def write_manifests(path: Path, docs: list[dict[str, Any]]) -> None:
    """Write atomically, as `kubectl`-style tools and editors that rename do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    os.replace(tmp, path)


@dataclass
class SeawayProcess:
    proc: subprocess.Popen[bytes]
    admin: str
    log: Path

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.admin}/api/v1/state", timeout=3) as r:
            return dict(json.loads(r.read()))

    def ingress(self, service: str) -> str:
        namespace, name = service.split("/")
        for svc in self.state()["services"]:
            if svc["namespace"] == namespace and svc["name"] == name:
                return str(svc["status"]["loadBalancer"]["ingress"][0]["ip"])
        raise KeyError(service)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_seaway(
    processes: Processes,
    tmp_path: Path,
    *paths: Path,
    state_file: Path | None = None,
    shutdown_delay: float = 0.0,
    extra_args: Sequence[str] = (),
) -> SeawayProcess:
    """`seaway run -f PATH...` (plus ``extra_args``); returns once /readyz answers 200."""
    admin = f"127.0.0.1:{free_port()}"
    log = tmp_path / f"seaway-{len(processes.procs)}.log"
    args = [PYTHON, "-m", "seaway", "run", "--admin", admin]
    args += ["--state-file", str(state_file or tmp_path / "addresses.json")]
    # No shutdown delay unless asked: teardown stops seaway with SIGTERM.
    args += ["--shutdown-delay", str(shutdown_delay)]
    for p in paths:
        args += ["-f", str(p)]
    args += extra_args
    proc = processes.start(*args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    sp = SeawayProcess(proc, admin, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"seaway exited {proc.returncode}:\n{sp.logs()}")
        with urllib.request.urlopen(f"http://{admin}/readyz", timeout=1) as r:
            return bool(r.status == 200)

    wait_until(ready, timeout=15)
    return sp


def http_request(
    host: str, port: int, path: str = "/hostname", *, host_header: str = "t", timeout: float = 3.0
) -> tuple[int, str]:
    """One GET on a new connection (a plain socket client, no pooling): status and body."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
        s.sendall(request.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


def http_get(
    host: str, port: int, path: str = "/hostname", *, host_header: str = "t", timeout: float = 3.0
) -> str:
    """The body of a GET that must answer 200."""
    status, body = http_request(host, port, path, host_header=host_header, timeout=timeout)
    if status != 200:
        raise AssertionError(f"unexpected status {status} for {path}")
    return body


def ingress_manifests(
    service: str, host: str, backends: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """seaway's IngressClass, a ClusterIP Service with one EndpointSlice per backend
    (address, port), and an Ingress sending every path of ``host`` to it."""
    slices = [
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{service}-{i}",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        }
        for i, (address, port) in enumerate(backends)
    ]
    path = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"name": "http"}}},
    }
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "seaway"},
            "spec": {"controller": "seaway.io/ingress-controller"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        },
        *slices,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": service, "namespace": "default"},
            "spec": {
                "ingressClassName": "seaway",
                "rules": [{"host": host, "http": {"paths": [path]}}],
            },
        },
    ]
