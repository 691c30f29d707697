"""`seaway run --workers 2` end to end: real worker processes sharing listeners with
SO_REUSEPORT, real backends and socket clients; per-worker admin APIs (port + index)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from seaway.shared_state import HealthTable, SharedRegion
from seaway.testing.processes import (
    PYTHON,
    Backend,
    Processes,
    http_get,
    ingress_manifests,
    seaway_config,
    service_manifests,
    start_backend,
    tcp_ready,
    wait_until,
    write_manifests,
)

CONNECTIONS = 200


def _free_port_pair() -> int:
    """A port P such that P and P + 1 were both free a moment ago."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as b:
                # As seaway binds: a port only in TIME_WAIT (an earlier client's) is free.
                b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two consecutive free ports")


def _state(admin: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{admin}/api/v1/state", timeout=3) as r:
        return dict(json.loads(r.read()))


def _ready(admin: str) -> bool:
    with urllib.request.urlopen(f"http://{admin}/readyz", timeout=1) as r:
        return bool(r.status == 200)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _manifests(pool: str, ingress_port: int, backends: list[Backend]) -> list[dict[str, Any]]:
    """A LoadBalancer Service "web" on port 8080, and an Ingress to Service "site"."""
    return [
        seaway_config(pool, ingress={"port": ingress_port}),
        *service_manifests("web", backends),
        *ingress_manifests("site", "site.example", [(backends[0].host, backends[0].port)]),
    ]


def _web(state: dict[str, Any]) -> dict[str, Any]:
    return next(dict(s) for s in state["services"] if s["name"] == "web")


def _web_ip(state: dict[str, Any]) -> str:
    return str(_web(state)["status"]["loadBalancer"]["ingress"][0]["ip"])


def _l4_total(state: dict[str, Any]) -> int:
    return sum(int(ep["total"]) for ep in _web(state)["ports"][0]["endpoints"])


def _start(
    processes: Processes, tmp_path: Path, pool: str, workers: int = 2
) -> tuple[subprocess.Popen[bytes], list[str], int, Path]:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    ingress_port = _free_port_pair()
    manifest = tmp_path / "lb.yaml"
    write_manifests(manifest, _manifests(pool, ingress_port, backends))
    proc, admins, log = _run_workers(processes, tmp_path, manifest, workers)
    return proc, admins, ingress_port, log


def _run_workers(
    processes: Processes, tmp_path: Path, manifest: Path, workers: int = 2
) -> tuple[subprocess.Popen[bytes], list[str], Path]:
    """`seaway run --workers N -f manifest`, once every worker's /readyz answers."""
    admin_port = _free_port_pair()
    admins = [f"127.0.0.1:{admin_port + i}" for i in range(workers)]
    log = tmp_path / "seaway.log"
    proc = processes.start(
        PYTHON, "-m", "seaway", "run", "--workers", str(workers), "--admin", admins[0],
        "--state-file", str(tmp_path / "addresses.json"), "--shutdown-delay", "0",
        "-f", str(manifest),
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    for admin in admins:
        wait_until(lambda a=admin: proc.poll() is None and _ready(a), timeout=15)
    return proc, admins, log


def test_two_workers_share_l4_and_ingress_listeners(processes: Processes, tmp_path: Path) -> None:
    proc, admins, ingress_port, log = _start(processes, tmp_path, "127.244.1.0/24")
    states = [_state(a) for a in admins]
    ip = _web_ip(states[0])
    # The same address in every worker: same files, same allocation.
    assert all(_web_ip(s) == ip for s in states)
    ingress_ip = wait_until(
        lambda: _state(admins[0])["ingresses"][0]["status"]["loadBalancer"]["ingress"][0]["ip"]
    )
    wait_until(lambda: tcp_ready(ingress_ip, ingress_port), timeout=5)

    names = [http_get(ip, 8080) for _ in range(CONNECTIONS)]
    assert set(names) == {"pod-0", "pod-1"}
    per_worker = wait_until(
        lambda: (t := [_l4_total(_state(a)) for a in admins]) and sum(t) == CONNECTIONS and t,
        timeout=5,
    )
    assert all(total > 0 for total in per_worker), per_worker  # the kernel spread them

    assert all(
        http_get(ingress_ip, ingress_port, host_header="site.example") == "pod-0" for _ in range(40)
    )
    assert "worker 1 (pid" in log.read_text()

    # SIGTERM: the parent forwards it, the workers drain and exit, then the parent.
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert not [pid for pid in workers if _alive(pid)]


def test_killed_worker_is_restarted_and_traffic_keeps_flowing(
    processes: Processes, tmp_path: Path
) -> None:
    proc, admins, _, log = _start(processes, tmp_path, "127.244.2.0/24")
    ip = _web_ip(_state(admins[0]))
    before = _children(proc.pid)
    assert len(before) == 2
    os.kill(before[1], signal.SIGKILL)
    # Once worker 1 is gone (its listening sockets closed with it), worker 0 alone
    # serves every new connection. (Connections already queued on a killed worker's
    # socket are reset: docs/operations.md.) Gone means reaped by the parent: a
    # killed leader thread shows as a zombie while its other threads, which share
    # its sockets, are still exiting.
    wait_until(lambda: before[1] not in _children(proc.pid), timeout=5)
    names = [http_get(ip, 8080) for _ in range(30)]
    assert set(names) <= {"pod-0", "pod-1"} and len(names) == 30
    wait_until(lambda: len(_children(proc.pid)) == 2 and before[1] not in _children(proc.pid))
    wait_until(lambda: _ready(admins[1]), timeout=15)
    assert "worker 1 exited unexpectedly" in log.read_text()
    assert _l4_total(_state(admins[1])) == 0  # a fresh process: its counters start at zero
    deadline = time.monotonic() + 10
    while _l4_total(_state(admins[1])) == 0 and time.monotonic() < deadline:
        http_get(ip, 8080)
    assert _l4_total(_state(admins[1])) > 0  # the restarted worker accepts again
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def _service(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(dict(s) for s in state["services"] if s["name"] == name)


def _endpoint_counts(admin: str, name: str, field: str) -> dict[str, int]:
    """One worker's counter ``field`` ("total", "active") per backend of Service ``name``."""
    endpoints = _service(_state(admin), name)["ports"][0]["endpoints"]
    return {str(ep["name"]): int(ep[field]) for ep in endpoints}


def _get_from(client: str, ip: str, port: int) -> str:
    """The backend's name, for one GET on a new connection from source address ``client``."""
    with socket.create_connection((ip, port), timeout=3, source_address=(client, 0)) as s:
        s.sendall(b"GET /hostname HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body.decode()


def _hold(ip: str, port: int) -> tuple[socket.socket, str]:
    """A connection kept open after one keep-alive GET: the socket and who answered."""
    s = socket.create_connection((ip, port), timeout=3)
    s.sendall(b"GET /hostname HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += s.recv(65536)
    return s, body.decode()


def test_client_ip_affinity_is_shared_by_the_workers(processes: Processes, tmp_path: Path) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "lb.yaml"
    write_manifests(
        manifest,
        [
            seaway_config("127.244.3.0/24"),
            *service_manifests("sticky", backends, extra_spec={"sessionAffinity": "ClientIP"}),
        ],
    )
    proc, admins, _ = _run_workers(processes, tmp_path, manifest)
    ip = str(_service(_state(admins[0]), "sticky")["status"]["loadBalancer"]["ingress"][0]["ip"])
    # Several client addresses: with an affinity table per worker, each worker would
    # choose on its own for each client (Maglev over the 5-tuple), and a client would
    # stick to one backend only by chance.
    clients = [f"127.0.0.{i}" for i in range(1, 6)]
    per_client = 40
    for client in clients:
        names = {_get_from(client, ip, 8080) for _ in range(per_client)}
        assert len(names) == 1, (client, names)
    totals = wait_until(
        lambda: (
            (t := [sum(_endpoint_counts(a, "sticky", "total").values()) for a in admins])
            and sum(t) == len(clients) * per_client
            and t
        ),
        timeout=5,
    )
    assert all(total > 0 for total in totals), totals  # both workers accepted some
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_least_connection_counts_are_summed_over_the_workers(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "lb.yaml"
    write_manifests(
        manifest,
        [
            seaway_config("127.244.4.0/24"),
            *service_manifests("least", backends, annotations={"seaway.io/algorithm": "lc"}),
        ],
    )
    proc, admins, _ = _run_workers(processes, tmp_path, manifest)
    ip = str(_service(_state(admins[0]), "least")["status"]["loadBalancer"]["ingress"][0]["ip"])
    held: list[tuple[socket.socket, str, int]] = []  # (connection, backend, worker)

    def active() -> list[int]:
        return [sum(_endpoint_counts(a, "least", "active").values()) for a in admins]

    def open_one() -> None:
        before = active()
        conn, name = _hold(ip, 8080)
        after = wait_until(lambda: (t := active()) and sum(t) == sum(before) + 1 and t)
        held.append((conn, name, 0 if after[0] > before[0] else 1))

    def close_one(worker: int) -> None:
        before = sum(active())
        index = next(i for i, (_, _, w) in enumerate(held) if w == worker)
        held.pop(index)[0].close()
        wait_until(lambda: sum(active()) == before - 1)

    try:
        for _ in range(6):
            open_one()
        # Counted per worker, lc would spread each worker's share over the backends
        # from the first one: 2 per backend only when each worker holds a multiple of
        # 3. Keep going until the kernel gave the workers a split that is not.
        for _ in range(60):
            on_first = sum(w == 0 for _, _, w in held)
            if on_first % 3 != 0:
                break
            close_one(0 if on_first >= 3 else 1)
            open_one()
        on_first = sum(w == 0 for _, _, w in held)
        assert on_first % 3 != 0, "the kernel kept a 3/3 or 6/0 split"
        assert Counter(name for _, name, _ in held) == {"pod-0": 2, "pod-1": 2, "pod-2": 2}
        # Each worker's admin API shows its own share; the sum is even.
        per_worker = [_endpoint_counts(a, "least", "active") for a in admins]
        assert all(sum(c.values()) > 0 for c in per_worker), per_worker
        assert {name: sum(c[name] for c in per_worker) for name in per_worker[0]} == {
            "pod-0": 2,
            "pod-1": 2,
            "pod-2": 2,
        }
    finally:
        for conn, _, _ in held:
            conn.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


class HealthEndpoint:
    """A tiny HTTP backend on loopback: counts GETs on /healthz and answers them 200
    or 503 as the test says (anything else: 200)."""

    def __init__(self) -> None:
        self.probes = 0
        self.healthy = True
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = 200
                if self.path == "/healthz":
                    endpoint.probes += 1
                    status = 200 if endpoint.healthy else 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _health(admin: str, name: str) -> str:
    """Worker ``admin``'s active check verdict of the one endpoint of Service ``name``."""
    return str(_service(_state(admin), name)["ports"][0]["endpoints"][0]["health"])


def _published_sequences(worker_pid: int) -> list[int]:
    """The sequence of every slot worker 0 published in the shared-state file."""
    argv = Path(f"/proc/{worker_pid}/cmdline").read_bytes().split(b"\0")
    path = argv[argv.index(b"--shared-state") + 1].decode()
    region = SharedRegion.open(path)
    try:
        table = HealthTable(region.words, region.layout)
        return [int(region.words[i + 1]) for i in table.occupied()]
    finally:
        region.close(remove=False)


def test_active_checks_run_in_worker_0_only_and_every_worker_follows(
    processes: Processes, tmp_path: Path
) -> None:
    endpoint = HealthEndpoint()
    try:
        manifest = tmp_path / "lb.yaml"
        write_manifests(
            manifest,
            [
                seaway_config("127.244.5.0/24"),
                *service_manifests(
                    "checked",
                    [Backend("pod-0", "127.0.0.1", endpoint.port, proc=None)],  # type: ignore[arg-type]
                    annotations={
                        "seaway.io/health-check-protocol": "http",
                        "seaway.io/health-check-path": "/healthz",
                        "seaway.io/health-check-interval": "0.2",
                        "seaway.io/health-check-healthy-threshold": "2",
                        "seaway.io/health-check-unhealthy-threshold": "2",
                    },
                ),
            ],
        )
        proc, admins, log = _run_workers(processes, tmp_path, manifest)
        for admin in admins:
            wait_until(lambda a=admin: _health(a, "checked") == "healthy", timeout=10)
        workers = _children(proc.pid)
        assert len(workers) == 2

        # One worker's worth of probes: every GET the backend got is a result worker 0
        # published (read around the count; one probe may be between the two).
        def sequence() -> int:
            (published,) = _published_sequences(workers[0])
            return published

        wait_until(lambda: sequence() >= 10, timeout=10)
        before = sequence()
        probes = endpoint.probes
        after = sequence()
        assert before <= probes <= after + 1, (before, probes, after)

        endpoint.healthy = False
        for admin in admins:
            wait_until(lambda a=admin: _health(a, "checked") == "unhealthy", timeout=10)
        assert "(check-failed)" in log.read_text()

        # Worker 0 dies: the supervisor restarts it, and it continues the sequence.
        last = sequence()
        os.kill(workers[0], signal.SIGKILL)
        wait_until(lambda: workers[0] not in _children(proc.pid), timeout=5)
        wait_until(lambda: len(_children(proc.pid)) == 2, timeout=10)
        wait_until(lambda: _ready(admins[0]), timeout=15)
        restarted = next(pid for pid in _children(proc.pid) if pid != workers[1])
        assert wait_until(lambda: (s := _published_sequences(restarted)) and s[0] > last)
        assert _health(admins[1], "checked") == "unhealthy"  # kept, and still followed
        endpoint.healthy = True
        for admin in admins:
            wait_until(lambda a=admin: _health(a, "checked") == "healthy", timeout=10)
        # Still one worker's worth, over both lives of worker 0: the restarted one went
        # on from the sequence the first one left (slack: one probe in flight when it
        # was killed, one now).
        (before,) = _published_sequences(restarted)
        probes = endpoint.probes
        (after,) = _published_sequences(restarted)
        assert before <= probes <= after + 2, (before, probes, after)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        endpoint.close()
