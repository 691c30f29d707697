"""`seaway top`, `seaway explain`, and the admin token, against real `seaway run` processes."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from seaway.testing.processes import (
    PYTHON,
    Processes,
    free_port,
    http_get,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    write_manifests,
)

TOKEN = "0123456789abcdef-token"


def seaway(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "seaway", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _web(processes: Processes, tmp_path: Path, pool: str) -> tuple[Path, list[str]]:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    docs = [seaway_config(pool), *service_manifests("web", backends)]
    for doc in docs[2:]:
        for endpoint in doc["endpoints"]:
            if endpoint["targetRef"]["name"] == "pod-1":
                endpoint["conditions"] = {"ready": False, "serving": True, "terminating": True}
            if endpoint["targetRef"]["name"] == "pod-2":
                endpoint["conditions"] = {"ready": False}
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, docs)
    return manifest, [f"{b.host}:{b.port}" for b in backends]


def test_explain_says_which_endpoints_are_used_and_why_not(
    processes: Processes, tmp_path: Path
) -> None:
    manifest, keys = _web(processes, tmp_path, "127.243.7.0/24")
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    out = seaway("explain", "default/web", "--admin", lb.admin)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Service default/web (type LoadBalancer)" in text
    assert f"address: {ip}" in text
    assert f"listener TCP/{ip}:8080: open" in text
    assert "source ranges: any client" in text
    assert "algorithm: maglev (hash on 5-tuple)" in text
    assert "session affinity: none" in text
    assert "endpoints: 1 of 3 get new connections" in text
    used = next(line for line in text.splitlines() if keys[0] in line)
    assert "pod-0" in used and "ready=yes" in used
    terminating = next(line for line in text.splitlines() if keys[1] in line)
    assert "pod-1" in terminating and terminating.rstrip().endswith("terminating")
    not_ready = next(line for line in text.splitlines() if keys[2] in line)
    assert "pod-2" in not_ready and not_ready.rstrip().endswith("not ready")
    assert "- not ready: Kubernetes says the pod is not ready" in text
    assert "- terminating: the pod is shutting down" in text

    # A bare name means namespace default; an unknown one lists what exists.
    assert seaway("explain", "web", "--admin", lb.admin).stdout == text
    missing = seaway("explain", "shop/cart", "--admin", lb.admin)
    assert missing.returncode == 1
    assert "no Service shop/cart in seaway's state (services: default/web)" in missing.stderr


def test_top_shows_connection_rates_per_backend(processes: Processes, tmp_path: Path) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.243.8.0/24"), *service_manifests("web", backends)]
    )
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            http_get(ip, 8080)
            stop.wait(0.01)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        out = seaway("top", "--admin", lb.admin, "--iterations", "2", "--interval", "0.7")
    finally:
        stop.set()
        sender.join(10)
    assert out.returncode == 0, out.stderr
    assert "\x1b[2J" not in out.stdout  # not a terminal: no screen clearing
    last = out.stdout.strip().splitlines()
    header = next(line for line in reversed(last) if line.startswith("SERVICE"))
    assert header.split() == [
        "SERVICE", "PORT", "BACKEND", "NAME", "USED", "ACTIVE", "CONN/S", "SHARE",
        "IN", "OUT", "TOTAL", "FAILED",
    ]  # fmt: skip
    start = len(last) - last[::-1].index(header)  # the last frame's rows
    rows = [line.split() for line in last[start:] if line.strip()]
    assert {r[3] for r in rows} == {"pod-0", "pod-1"}
    rates = [float(r[6]) for r in rows]
    assert sum(rates) > 5, out.stdout  # ~50 connections/s were sent
    assert sum(int(r[7].rstrip("%")) for r in rows) in range(98, 103)
    assert out.stdout.count("rates over the last") == 2


def test_top_once_fails_clearly_without_seaway() -> None:
    out = seaway("top", "--once", "--interval", "0.1", "--admin", f"127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert "is `seaway run` running?" in out.stderr


def test_admin_token_protects_the_api_and_the_cli_sends_it(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, "pod-0")]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.243.9.0/24"), *service_manifests("web", backends)]
    )
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    lb = start_seaway(
        processes, tmp_path, manifest, extra_args=["--admin-token-file", str(token_file)]
    )
    assert "admin API authentication is on" in lb.logs()
    anonymous = seaway("status", "--admin", lb.admin)
    assert anonymous.returncode == 1
    assert "needs a bearer token: pass --admin-token-file" in anonymous.stderr
    status = seaway("status", "--admin", lb.admin, "--admin-token-file", str(token_file))
    assert status.returncode == 0, status.stderr
    assert "default/web" in " ".join(status.stdout.split()) or "web" in status.stdout
    explain = seaway(
        "explain", "default/web", "--admin", lb.admin, "--admin-token-file", str(token_file)
    )
    assert "endpoints: 1 of 1 get new connections" in explain.stdout


def test_non_loopback_admin_without_token_refuses_to_start(tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    write_manifests(manifest, [seaway_config("127.243.10.0/24")])
    out = seaway(
        "run", "-f", str(manifest), "--admin", f"0.0.0.0:{free_port()}",
        "--state-file", str(tmp_path / "a.json"), "--shutdown-delay", "0",
    )  # fmt: skip
    assert out.returncode == 1
    assert "is not a loopback address, so it needs a bearer token" in out.stderr
    assert "--admin-token-file" in out.stderr
    assert "seaway did not start" in out.stderr
