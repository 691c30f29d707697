"""`seaway run --workers 2` end to end: real worker processes sharing listeners with
SO_REUSEPORT, real backends and socket clients; per-worker admin APIs (port + index)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

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
    return proc, admins, ingress_port, log


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
    # socket are reset: docs/operations.md.)
    wait_until(lambda: not _alive(before[1]), timeout=5)
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
