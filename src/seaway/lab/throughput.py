"""Bounded load from the lab's client: requests per second and latency percentiles.

``wrk`` (when installed) runs inside the client's namespace (``ip netns exec``) with
keep-alive connections; without it, a small Python generator does the same from a
:class:`NamespaceThread` (it is itself slower, and says so in its figures' ``tool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from dataclasses import dataclass

from seaway.lab import topology
from seaway.lab.namespace_threads import NamespaceThread

CONNECTIONS = 16
REQUEST_SECONDS = 3.0
# wrk prints durations with these units (src/units.c); h2load uses a subset of them.
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True, slots=True)
class LoadFigures:
    """What one bounded run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and non-2xx answers
    tool: str


def duration_ms(text: str) -> float:
    """A duration as wrk and h2load print it (``"1.23ms"``, ``"4.5s"``), in milliseconds;
    raises ValueError for anything else."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> LoadFigures:
    """The figures of ``wrk --latency`` output; raises ValueError when it has none."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    p50 = re.search(r"^\s+50%\s+(\S+)$", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)$", output, re.MULTILINE)
    if not (rps and total and p50 and p99):
        raise ValueError(f"wrk printed no figures:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return LoadFigures(
        requests=int(total.group(1)),
        seconds=duration_ms(total.group(2)) / 1e3,
        requests_per_second=float(rps.group(1)),
        p50_ms=duration_ms(p50.group(1)),
        p99_ms=duration_ms(p99.group(1)),
        errors=errors,
        tool="wrk",
    )


async def run_wrk(host: str, port: int, path: str, seconds: float) -> LoadFigures:
    """``wrk`` from the client's namespace: one thread, ``CONNECTIONS`` keep-alive
    connections, ``seconds`` long."""
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        topology.CLIENT,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds:g}s",
        f"--timeout={REQUEST_SECONDS:g}s",
        "--latency",
        f"http://{host}:{port}{path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(seconds + 15):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await proc.wait()
    return parse_wrk(out.decode(errors="replace"))


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def run_python(
    thread: NamespaceThread, host: str, port: int, path: str, seconds: float
) -> LoadFigures:
    """The same load from Python keep-alive connections (when wrk is not installed)."""
    latencies: list[float] = []
    errors = 0
    request = f"GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n".encode()

    async def connection(deadline: float) -> None:
        nonlocal errors
        try:
            reader, writer = await thread.open_connection(host, port, REQUEST_SECONDS)
        except (OSError, TimeoutError):
            errors += 1
            return
        try:
            while time.monotonic() < deadline:
                start = time.monotonic()
                writer.write(request)
                async with asyncio.timeout(REQUEST_SECONDS):
                    head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length:\s*(\d+)", head)
                async with asyncio.timeout(REQUEST_SECONDS):
                    await reader.readexactly(int(match.group(1)) if match else 0)
                if not head.startswith(b"HTTP/1.1 2"):
                    errors += 1
                latencies.append((time.monotonic() - start) * 1e3)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection(started + seconds) for _ in range(CONNECTIONS)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return LoadFigures(
        len(latencies),
        elapsed,
        len(latencies) / elapsed,
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
        errors,
        "python",
    )


async def measure(
    thread: NamespaceThread, host: str, port: int, path: str, seconds: float
) -> LoadFigures:
    """``seconds`` of keep-alive load to ``host:port``: wrk if installed, else Python."""
    if shutil.which("wrk"):
        return await run_wrk(host, port, path, seconds)
    return await run_python(thread, host, port, path, seconds)
