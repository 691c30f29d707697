"""Load generators: wrk and h2load (parsed), a one-connection bulk client, and a holder
of many idle keep-alive connections. Every one is bounded in time; all traffic goes to
the address given, which the harness keeps on loopback.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from seaway.lab.throughput import duration_ms

T = TypeVar("T")

# Time a load generator may take beyond its nominal duration before it is killed.
GRACE_SECONDS = 15.0
IO_TIMEOUT = 5.0


class LoadFailed(Exception):
    """The load generator failed or produced no numbers."""


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured.

    ``operations`` counts what ``rate`` is per second of: requests, connections, or
    megabytes (bulk). Latencies in milliseconds (None when the tool does not give them).
    """

    operations: float
    seconds: float
    rate: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    errors: int = 0


def _ms(text: str) -> float:
    try:
        return duration_ms(text)
    except ValueError:
        raise LoadFailed(f"unreadable duration {text!r}") from None


def parse_wrk(text: str) -> LoadResult:
    """The numbers of ``wrk --latency`` output."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if total is None or rate is None:
        raise LoadFailed(f"no numbers in wrk output: {text[-400:]!r}")
    p50 = re.search(r"^\s*50%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", text, re.MULTILINE)
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors:
        # Reads that find the connection closed are how wrk sees "Connection: close"
        # responses end on some servers; connect/write errors and timeouts are real.
        errors += sum(int(socket_errors.group(i)) for i in (1, 3, 4))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        errors += int(bad.group(1))
    return LoadResult(
        operations=float(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1000,
        rate=float(rate.group(1)),
        p50_ms=_ms(p50.group(1)) if p50 else None,
        p99_ms=_ms(p99.group(1)) if p99 else None,
        errors=errors,
    )


def run_wrk(
    wrk: str,
    url: str,
    *,
    duration: float,
    connections: int,
    close: bool = False,
    threads: int = 1,
) -> LoadResult:
    """``wrk --latency`` for ``duration`` seconds; ``close`` sends ``Connection: close``."""
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    args += ["--latency", "--timeout", "5s"]
    if close:
        args += ["-H", "Connection: close"]
    args.append(url)
    done = _run(args, duration)
    return parse_wrk(done)


def parse_h2load(text: str) -> LoadResult:
    """The numbers of h2load output (it gives the mean request time, no percentiles)."""
    finished = re.search(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", text)
    requests = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored",
        text,
    )
    if finished is None or requests is None:
        raise LoadFailed(f"no numbers in h2load output: {text[-400:]!r}")
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", text)
    return LoadResult(
        operations=float(requests.group(1)),
        seconds=_ms(finished.group(1) + finished.group(2)) / 1000,
        rate=float(finished.group(3)),
        mean_ms=_ms(mean.group(1)) if mean else None,
        errors=int(requests.group(2)) + int(requests.group(3)),
    )


def run_h2load(h2load: str, url: str, *, duration: float, clients: int, streams: int) -> LoadResult:
    """h2load with prior-knowledge h2c, ``clients`` connections of ``streams`` streams."""
    args = [h2load, "-t1", f"-c{clients}", f"-m{streams}", f"-D{max(1, round(duration))}"]
    args.append(url)
    return parse_h2load(_run(args, duration))


def h2_supported(h2load: str, url: str) -> bool:
    """Whether ``url`` answers one request over prior-knowledge h2c."""
    try:
        done = subprocess.run(
            [h2load, "-n1", "-c1", url], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(re.search(r"requests: 1 total, 1 started, 1 done, 1 succeeded", done.stdout))


def _run(args: list[str], duration: float) -> str:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=duration + GRACE_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadFailed(f"{args[0]} did not finish in time") from exc
    if done.returncode != 0:
        raise LoadFailed(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-400:]}")
    return done.stdout


def bulk_transfer(host: str, port: int, path: str, duration: float) -> LoadResult:
    """MB/s of response bodies through one keep-alive connection, GET after GET.

    Reads into one preallocated buffer (``recv_into``), so the client copies nothing
    itself; the last response started before ``duration`` is read to its end.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: bench.local\r\n\r\n".encode()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    received = 0
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as conn:
        started = time.perf_counter()
        deadline = started + duration
        while time.perf_counter() < deadline:
            conn.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    raise LoadFailed("the connection closed before a response head")
                head += chunk
            fields, _, rest = head.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", fields)
            if not fields.startswith(b"HTTP/1.1 200") or length is None:
                raise LoadFailed(f"unexpected response head {fields[:120]!r}")
            remaining = int(length.group(1)) - len(rest)
            received += len(rest)
            while remaining > 0:
                n = conn.recv_into(view[: min(remaining, len(buffer))])
                if n == 0:
                    raise LoadFailed("the connection closed in the middle of a body")
                remaining -= n
                received += n
        elapsed = time.perf_counter() - started
    megabytes = received / 1e6
    return LoadResult(operations=megabytes, seconds=elapsed, rate=megabytes / elapsed)


async def _open_one(
    host: str, port: int, request: bytes, gate: asyncio.Semaphore
) -> asyncio.StreamWriter | None:
    async with gate:
        try:
            async with asyncio.timeout(IO_TIMEOUT * 2):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if not head.startswith(b"HTTP/1.1 200") or length is None:
                    writer.close()
                    return None
                await reader.readexactly(int(length.group(1)))
                return writer
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None


async def _hold(
    host: str, port: int, path: str, count: int, measure: Callable[[], T], *, settle: float
) -> tuple[T, int]:
    request = f"GET {path} HTTP/1.1\r\nHost: bench.local\r\n\r\n".encode()
    # Not more than this many handshakes at once: below every listen backlog (nginx's
    # default is 511), so that no SYN is dropped and retried a second later.
    gate = asyncio.Semaphore(256)
    writers: list[asyncio.StreamWriter] = []
    try:
        results = await asyncio.gather(
            *(_open_one(host, port, request, gate) for _ in range(count))
        )
        writers = [w for w in results if w is not None]
        await asyncio.sleep(settle)
        value = measure()
    finally:
        for writer in writers:
            writer.transport.abort()
        await asyncio.sleep(0)
    return value, len(writers)


def hold_idle(
    host: str, port: int, path: str, count: int, measure: Callable[[], T], *, settle: float = 1.0
) -> tuple[T, int]:
    """Open ``count`` keep-alive connections (one request each), call ``measure`` while
    they sit idle, close them; returns its value and how many connections were open."""
    return asyncio.run(_hold(host, port, path, count, measure, settle=settle))
