"""One HTTP/1.1 GET over a socket made inside a lab namespace: probes and load requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from seaway.lab.namespace_threads import NamespaceThread

BACKEND_HEADER = b"x-seaway-backend"


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: str
    backend: str  # the X-Seaway-Backend header: which pod answered


async def http_get(
    thread: NamespaceThread,
    host: str,
    port: int,
    path: str,
    limit: float,
) -> HttpAnswer:
    """GET ``path`` on a new connection from ``thread``'s namespace, within ``limit`` s each for
    connecting and for the answer; raises OSError or TimeoutError."""
    reader, writer = await thread.open_connection(host, port, limit)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        async with asyncio.timeout(limit):
            data = await reader.read(-1)
    finally:
        writer.close()
    return parse_answer(data)


def parse_answer(data: bytes) -> HttpAnswer:
    """The status, body and backend header of one HTTP/1.1 response; ValueError if none."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ConnectionResetError("connection closed before a complete response")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:60]!r}")
    backend = ""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == BACKEND_HEADER:
            backend = value.strip().decode(errors="replace")
    return HttpAnswer(int(parts[1]), body.decode(errors="replace"), backend)
