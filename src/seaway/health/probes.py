"""One active health probe: a TCP connect, or an HTTP/1.1 GET and its status code.

Every probe ends within its timeout, whatever the backend does (accepts and never
answers, trickles bytes, resets): the whole exchange runs under one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from seaway import __version__
from seaway.core.config import HealthCheck, join_host_port

USER_AGENT = f"seaway-health-check/{__version__}"
# A status line is short; a backend sending more than this before a newline is not HTTP.
MAX_STATUS_LINE = 4096


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Whether the probe passed, and what was seen (for logs and the admin state)."""

    passed: bool
    detail: str


async def probe(address: str, port: int, check: HealthCheck) -> ProbeResult:
    """One probe of ``check`` against ``address:port``; never raises, ends within the timeout."""
    try:
        async with asyncio.timeout(check.timeout):
            if check.protocol == "tcp":
                return await _tcp(address, port)
            return await _http(address, port, check)
    except TimeoutError:
        return ProbeResult(False, f"no answer within {check.timeout:g} s")
    except OSError as exc:
        # asyncio words a refused connect "Connect call failed"; the errno says which.
        why = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        return ProbeResult(False, why)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _tcp(address: str, port: int) -> ProbeResult:
    _, writer = await asyncio.open_connection(address, port)
    await _close(writer)
    return ProbeResult(True, "connected")


async def _http(address: str, port: int, check: HealthCheck) -> ProbeResult:
    reader, writer = await asyncio.open_connection(address, port, limit=MAX_STATUS_LINE)
    try:
        request = (
            f"GET {check.path} HTTP/1.1\r\n"
            f"Host: {join_host_port(address, port)}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(request.encode("latin-1"))
        await writer.drain()
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return ProbeResult(False, "connection closed before a status line")
        except asyncio.LimitOverrunError:
            return ProbeResult(False, "not an HTTP response (status line too long)")
    finally:
        await _close(writer)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return ProbeResult(False, f"not an HTTP response: {line[:40]!r}")
    status = int(parts[1])
    passed = any(low <= status <= high for low, high in check.expected_statuses)
    return ProbeResult(passed, f"HTTP {status}")
