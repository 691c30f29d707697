"""``seaway demo``: the demo cluster's pods and seaway in front of them, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from seaway.app import Seaway
from seaway.backend.server import serve_backend
from seaway.core.config import join_host_port
from seaway.model.errors import InvalidConfiguration
from seaway.sources.files import load_paths


def demo_manifest() -> Path:
    """The demo manifests shipped with seaway (also in the repository's examples/)."""
    return Path(str(resources.files("seaway") / "examples" / "demo.yaml"))


def _pods(manifest: Path) -> list[tuple[str, str]]:
    """(listen address, pod name) for every endpoint of every slice in the manifest."""
    state = load_paths([str(manifest)])
    pods: dict[str, str] = {}
    for slices in state.slices_by_service.values():
        for slice_ in slices:
            tcp_ports = {p.port for p in slice_.ports if p.protocol == "TCP"}
            for endpoint in slice_.endpoints:
                name = (endpoint.target_ref or endpoint.addresses[0]).rsplit("/", 1)[-1]
                for port in tcp_ports:
                    pods[join_host_port(endpoint.addresses[0], port)] = name
    return sorted(pods.items())


async def _client(address: str, port: int) -> None:
    """One short connection, as a user's curl would make."""
    async with asyncio.timeout(2):
        reader, writer = await asyncio.open_connection(address, port)
    try:
        writer.write(b"GET /hostname HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(2):
            await reader.read()
    finally:
        writer.close()


async def _traffic(address: str, port: int, rate: float) -> None:
    while True:
        with contextlib.suppress(OSError, TimeoutError):
            await _client(address, port)
        await asyncio.sleep(1.0 / rate)


def _render(app: Seaway, started: float) -> str:
    lines = [f"seaway demo — {time.monotonic() - started:5.0f} s — Ctrl-C stops"]
    snapshot = app.snapshot()
    for service in snapshot["services"]:
        for port in service["ports"]:
            if port["protocol"] != "TCP" or not port["listeners"]:
                continue
            total = sum(ep["total"] for ep in port["endpoints"]) or 1
            lines.append(f"{service['namespace']}/{service['name']} {port['listeners'][0]}")
            for ep in port["endpoints"]:
                share = ep["total"] / total
                bar = "#" * round(share * 40)
                lines.append(
                    f"  {ep['name']:<16} {ep['address']}:{ep['port']:<6}"
                    f" {ep['total']:>6} connections  {share:6.1%} {bar}"
                )
    return "\n".join(lines)


async def run_demo(*, duration: float, traffic: float, admin: str) -> int:
    """Start the pods and seaway; show which backend served how many connections."""
    manifest = demo_manifest()
    try:
        pods = _pods(manifest)
    except InvalidConfiguration as exc:
        print(f"error: the demo manifest is invalid: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="seaway-demo-") as tmp:
        app = Seaway([str(manifest)], admin_address=admin, state_file=Path(tmp) / "addresses.json")
        async with asyncio.TaskGroup() as tasks:
            backends = [
                tasks.create_task(serve_backend(listen, name), name=f"backend {name}")
                for listen, name in pods
            ]
            await asyncio.sleep(0.3)  # let the backends bind before traffic arrives
            try:
                await app.start()
            except BaseException:
                for task in backends:
                    task.cancel()
                raise
            background: list[asyncio.Task[None]] = [tasks.create_task(app.serve())]
            try:
                listener = next(
                    (lst for lst in app.config.listeners.values() if lst.protocol == "TCP"), None
                )
                if listener is None:
                    print("error: the demo Service got no listener", file=sys.stderr)
                    return 1
                url = f"http://{join_host_port(listener.address, listener.port)}/hostname"
                print(f"seaway is serving demo/web at {url}")
                print(f"  try:    curl {url}")
                bound = app.admin.bound_address if app.admin else admin
                print(f"  status: seaway status --admin {bound}")
                if traffic > 0:
                    background.append(
                        tasks.create_task(_traffic(listener.address, listener.port, traffic))
                    )
                started = time.monotonic()
                tty = sys.stdout.isatty()
                while duration <= 0 or time.monotonic() - started < duration:
                    await asyncio.sleep(1.0)
                    view = _render(app, started)
                    print(("\x1b[2J\x1b[H" if tty else "") + view, flush=True)
            finally:
                for task in background + backends:
                    task.cancel()
                await app.close()
    return 0
