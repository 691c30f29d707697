"""The Python cost of seaway's L7 request path, without the kernel: ``python -m bench.l7_path``.

The load benchmarks (``python -m bench``) measure seaway whole, system calls and
scheduling included, on a shared machine where one run differs from the next by 20 %
or more. To tell whether a change to the request path made it cheaper, this drives the
real ``HttpDataPlane`` code — a ``ClientConnection`` parsing requests, an ``Exchange``
routing and balancing each one, a pooled ``UpstreamConnection`` parsing the response —
through in-memory transports that record what is written instead of calling ``send``.
A keep-alive client sends GET requests one after another; each is answered with the
backend nginx's response from the load benchmarks (the same fields, 130 bytes of body).
It prints the median over several runs of the CPU time per request (``process_time``).

What it leaves out is what every proxy pays alike: ``recv``/``send``, epoll and the
event loop's own dispatch (``bench.floor_proxy`` measures those). The number is for
comparing one version of the path with another (``--baseline PATH`` runs another
checkout's code in a child process the same way), not a throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvloop
import yaml

REQUEST = (
    b"GET /small.txt HTTP/1.1\r\nHost: 127.0.92.20:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
)
BODY = b'{"status":"ok","service":"bench","items":[1,2,3,4,5,6,7,8,9,10]}\n' * 2
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 21:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"Last-Modified: Sun, 22 Nov 2026 20:00:00 GMT\r\nConnection: keep-alive\r\n"
    b'ETag: "6740e000-82"\r\nAccept-Ranges: bytes\r\n\r\n' + BODY
)


class MemoryTransport(asyncio.Transport):
    """A transport that keeps what is written (the last write) instead of sending it."""

    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.written = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("peername", "sockname"):
            return self.peer
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closing = True


def _manifests() -> list[dict[str, Any]]:
    # The load benchmarks' configuration: an Ingress to one Service with one endpoint.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import contenders as ct  # noqa: PLC0415
    from seaway.testing.processes import free_port  # noqa: PLC0415

    backend = ct.Backend(ct.BACKEND_HOST, 8000, None)  # type: ignore[arg-type]
    return ct.seaway_manifests(backend, free_port(ct.SEAWAY_L4_HOST), free_port(ct.SEAWAY_L7_HOST))


async def _measure(requests: int, runs: int) -> list[float]:
    from seaway.core.plan import plan  # noqa: PLC0415
    from seaway.dataplane.http import HttpDataPlane  # noqa: PLC0415
    from seaway.dataplane.http.downstream import ClientConnection  # noqa: PLC0415
    from seaway.dataplane.http.upstream import UpstreamConnection  # noqa: PLC0415
    from seaway.model.parse import parse_text  # noqa: PLC0415
    from seaway.model.validate import build_state  # noqa: PLC0415

    parsed = parse_text(yaml.safe_dump_all(_manifests()), "bench.yaml")
    config = plan(build_state([parsed]), {})
    plane = HttpDataPlane(rng=random.Random(7))
    # The listener opens (on loopback) but carries nothing: the path is driven through
    # the protocol objects.
    await plane.apply(config)
    runtime = plane._runtime
    assert runtime is not None and runtime.pool is not None
    server = next(iter(plane._servers.values()))
    live = next(iter(runtime.sets.values()))
    backend = live.spec.backends[0]

    upstream = UpstreamConnection(runtime.pool, backend)
    upstream.connection_made(MemoryTransport((backend.address, backend.port)))
    runtime.pool.open[backend.key] = 1
    runtime.pool._all.add(upstream)
    runtime.pool.idle[backend.key] = [upstream]

    client = ClientConnection(server)
    client_transport = MemoryTransport(("127.0.0.1", 40000))
    client.connection_made(client_transport)
    tick = asyncio.sleep

    results = []
    for _ in range(runs):
        started = time.process_time()
        for _ in range(requests):
            client.data_received(REQUEST)
            upstream.data_received(RESPONSE)
            await tick(0)  # the exchange ends on the next loop iteration, as it does live
        results.append((time.process_time() - started) / requests * 1e6)
    if client_transport.written < requests * runs * len(BODY):
        raise SystemExit(f"the responses did not reach the client ({client_transport.written} B)")
    await plane.close()
    return results


def run_here(requests: int, runs: int) -> list[float]:
    """Per-request CPU µs of each run, measured in this process."""
    return uvloop.run(_measure(requests, runs))


def run_checkout(source: Path, requests: int, runs: int) -> list[float]:
    """The same, for another checkout's code, in a child process."""
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    args = [sys.executable, "-m", "bench.l7_path", "--json", "--requests", str(requests)]
    out = subprocess.run(
        [*args, "--runs", str(runs)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return [float(x) for x in json.loads(out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.l7_path", description=__doc__)
    parser.add_argument("--requests", type=int, default=20000, help="requests per run")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another seaway checkout to compare")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(run_here(args.requests, args.runs)))
        return 0
    rounds: dict[str, list[float]] = {"seaway": []}
    if args.baseline is not None:
        rounds["baseline"] = []
    # Alternate, so that drift on the machine hits both alike.
    for _ in range(args.runs):
        rounds["seaway"] += run_checkout(Path.cwd(), args.requests, 1)
        if args.baseline is not None:
            rounds["baseline"] += run_checkout(args.baseline, args.requests, 1)
    for name, values in rounds.items():
        print(
            f"{name:9} {statistics.median(values):6.1f} µs CPU per request (median of "
            f"{len(values)}; min {min(values):.1f}, max {max(values):.1f})"
        )
    if args.baseline is not None:
        ratio = statistics.median(rounds["seaway"]) / statistics.median(rounds["baseline"])
        print(f"seaway ÷ baseline: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
