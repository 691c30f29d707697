"""Health and lifecycle end to end: real `seaway run`, real `seaway backend` processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from seaway.testing.processes import (
    PYTHON,
    Backend,
    Processes,
    SeawayProcess,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    wait_until,
    write_manifests,
)

IO_TIMEOUT = 3.0
FAST_TCP_CHECK = {
    "seaway.io/health-check-protocol": "tcp",
    "seaway.io/health-check-interval": "0.1",
    "seaway.io/health-check-timeout": "0.1",
    "seaway.io/health-check-unhealthy-threshold": "2",
    "seaway.io/health-check-healthy-threshold": "1",
}


def endpoints(lb: SeawayProcess) -> dict[str, dict[str, Any]]:
    return {ep["name"]: ep for ep in lb.state()["services"][0]["ports"][0]["endpoints"]}


class KeepAlive:
    """One HTTP/1.1 keep-alive connection through seaway (a plain socket)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)

    def get(self, path: str = "/hostname") -> str:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self.sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head
        return body.decode()

    def close(self) -> None:
        self.sock.close()


def one_request(host: str, port: int) -> str:
    conn = KeepAlive(host, port)
    try:
        return conn.get()
    finally:
        conn.close()


class Load:
    """A client thread making new connections continuously; counts failures."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                one_request(self.host, self.port)
                self.ok += 1
            except (OSError, AssertionError) as exc:
                self.failed.append(repr(exc))
            time.sleep(0.005)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(IO_TIMEOUT * 2)


def setup(
    processes: Processes,
    tmp_path: Path,
    pool: str,
    count: int,
    annotations: dict[str, str],
    **config: Any,
) -> tuple[list[Backend], SeawayProcess, str, Path]:
    backends = [start_backend(processes, f"pod-{i}") for i in range(count)]
    manifest = tmp_path / "web.yaml"
    docs = [
        seaway_config(pool, **config),
        *service_manifests("web", backends, annotations=annotations),
    ]
    write_manifests(manifest, docs)
    lb = start_seaway(processes, tmp_path, manifest)
    return backends, lb, lb.ingress("default/web"), manifest


def test_a_killed_backend_gets_no_new_connection_after_time_to_unhealthy(
    processes: Processes, tmp_path: Path
) -> None:
    backends, lb, ip, _ = setup(
        processes,
        tmp_path,
        "127.242.1.0/24",
        3,
        FAST_TCP_CHECK,
        outlierDetection={"enabled": False},  # the active check alone must do it
    )
    wait_until(lambda: all(ep["health"] == "healthy" for ep in endpoints(lb).values()))
    with Load(ip, 8080) as load:
        time.sleep(0.2)
        backends[0].proc.kill()
        backends[0].proc.wait(5)
        killed_at = time.monotonic()
        wait_until(lambda: endpoints(lb)["pod-0"]["reason"] == "unhealthy", timeout=5)
        took = time.monotonic() - killed_at
        # interval 0.1 x threshold 2 + timeout 0.1 = 0.3 s, plus a probe period of phase
        # and a re-plan; far less than a second.
        assert took < 1.0, took
        tries_before = endpoints(lb)["pod-0"]["failed"]
        failed_before = len(load.failed)
        time.sleep(0.5)
    assert endpoints(lb)["pod-0"]["failed"] == tries_before  # never tried again
    # A request in flight on pod-0 when it was killed dies with it (a reset); new
    # connections meanwhile were retried elsewhere, and after the check none failed.
    assert len(load.failed) == failed_before, load.failed[failed_before:][:3]
    assert all("reset" in f.lower() for f in load.failed), load.failed[:3]
    assert load.ok > 20
    names = {one_request(ip, 8080) for _ in range(20)}
    assert names == {"pod-1", "pod-2"}


def test_an_unready_backend_is_drained_while_its_open_connections_finish(
    processes: Processes, tmp_path: Path
) -> None:
    check = {
        **FAST_TCP_CHECK,
        "seaway.io/health-check-protocol": "http",
        "seaway.io/health-check-path": "/readyz",
    }
    backends, lb, ip, _ = setup(processes, tmp_path, "127.242.2.0/24", 3, check)
    wait_until(lambda: all(ep["health"] == "healthy" for ep in endpoints(lb).values()))
    open_conn = KeepAlive(ip, 8080)
    try:
        victim = open_conn.get()
        backend = next(b for b in backends if b.name == victim)
        request = urllib.request.Request(
            f"http://{backend.host}:{backend.port}/readyz/fail", method="POST"
        )
        urllib.request.urlopen(request, timeout=IO_TIMEOUT).close()
        wait_until(lambda: endpoints(lb)[victim]["reason"] == "unhealthy", timeout=5)
        names = {one_request(ip, 8080) for _ in range(30)}
        assert victim not in names and len(names) == 2
        # The open connection goes on, to the same backend.
        assert open_conn.get() == victim
        assert endpoints(lb)[victim]["active"] == 1
    finally:
        open_conn.close()


def test_with_every_endpoint_terminating_traffic_still_flows(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    docs = service_manifests("web", backends)
    for doc in docs:
        for endpoint in doc.get("endpoints", []):
            endpoint["conditions"] = {"ready": False, "serving": True, "terminating": True}
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, [seaway_config("127.242.3.0/24"), *docs])
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    names = {one_request(ip, 8080) for _ in range(20)}
    assert names == {"pod-0", "pod-1"}  # KEP-1669: serving-terminating endpoints are used
    assert all(ep["terminating"] and ep["usable"] for ep in endpoints(lb).values())


def readyz(lb: SeawayProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://{lb.admin}/readyz", timeout=1) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sigterm_under_load_loses_no_established_connection(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.242.4.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest, shutdown_delay=0.8)
    ip = lb.ingress("default/web")
    established = [KeepAlive(ip, 8080) for _ in range(10)]
    try:
        for conn in established:
            conn.get()
        with Load(ip, 8080) as load:
            time.sleep(0.1)
            lb.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: readyz(lb) == 503, timeout=2)
            time.sleep(0.2)
            assert one_request(ip, 8080)  # still accepting during the delay
            for conn in established:
                conn.get()
        # Nothing was reset or cut; at most refused once the delay was over.
        assert all("Connection refused" in f for f in load.failed), load.failed[:3]
        wait_until(lambda: _refused(ip, 8080), timeout=3)  # then it stops accepting
        assert lb.proc.poll() is None  # ... and waits for the open connections
        for conn in established:
            assert conn.get() in {"pod-0", "pod-1"}  # every established one still works
    finally:
        for conn in established:
            conn.close()
    assert lb.proc.wait(5) == 0
    assert "drained; exiting" in lb.logs()


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_sighup_reloads_at_once_without_dropping_a_connection(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, "pod-0")]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.242.5.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    conn = KeepAlive(ip, 8080)
    try:
        assert conn.get() == "pod-0"
        generation = lb.state()["generation"]
        more = service_manifests("api", backends, port=8081)
        write_manifests(
            manifest, [seaway_config("127.242.5.0/24"), *service_manifests("web", backends), *more]
        )
        lb.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: lb.state()["generation"] > generation, timeout=3)
        assert "SIGHUP: reading" in lb.logs()
        assert conn.get() == "pod-0"  # the reload dropped nothing
    finally:
        conn.close()


def test_validate_prints_timeline_warnings_and_passes(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        """\
apiVersion: v1
kind: Service
metadata: {name: web, annotations: {seaway.io/health-check-protocol: tcp}}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, lifecycle: {preStop: {sleep: {seconds: 5}}}}]
"""
    )
    out = subprocess.run(
        [PYTHON, "-m", "seaway", "validate", "-f", str(manifest)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (
        "warning: Service default/web and Deployment default/web: time to unhealthy" in out.stdout
    )
    assert "(5 s x 2 + 2 s = 12 s)" in out.stdout
    assert "valid, 1 warning(s)" in out.stdout


def test_second_sigterm_exits_at_once(processes: Processes, tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, [seaway_config("127.242.6.0/24")])
    lb = start_seaway(processes, tmp_path, manifest, shutdown_delay=30)
    lb.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: readyz(lb) == 503, timeout=2)
    lb.proc.send_signal(signal.SIGTERM)
    assert lb.proc.wait(5) == 0
