"""Steady load from the lab's client: a new connection per request, at a fixed rate.

Every request is recorded (when, to which address, which pod answered, or how it
failed), so that scenarios can count failures and tie each to what the cluster was
doing at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

from seaway.lab.http_probe import http_get
from seaway.lab.namespace_threads import NamespaceThread


@dataclass(frozen=True, slots=True)
class RequestRecord:
    at: float  # monotonic time the request started
    target: str  # host:port
    backend: str  # the pod that answered ("" on failure)
    error: str  # "" on success: refused, reset, timeout, HTTP 503, ...
    body: str = ""  # the answer (with path /clientip: the source address the pod saw)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class LoadResult:
    records: list[RequestRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.records)

    def failures(self) -> list[RequestRecord]:
        return [r for r in self.records if not r.ok]

    def by_backend(self) -> Counter[str]:
        return Counter(r.backend for r in self.records if r.ok)

    def errors(self) -> Counter[str]:
        return Counter(r.error for r in self.records if not r.ok)


def classify(exc: BaseException) -> str:
    """A failure in a user's words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


async def one_request(
    thread: NamespaceThread, host: str, port: int, path: str, limit: float
) -> RequestRecord:
    start = time.monotonic()
    target = f"{host}:{port}"
    try:
        answer = await http_get(thread, host, port, path, limit)
    except (OSError, TimeoutError, ValueError) as exc:
        return RequestRecord(start, target, "", classify(exc))
    if answer.status != 200:
        return RequestRecord(start, target, answer.backend, f"HTTP {answer.status}")
    return RequestRecord(start, target, answer.backend, "", answer.body)


class SteadyLoad:
    """``rate`` requests per second from ``thread``'s namespace, round-robin over ``targets``."""

    def __init__(
        self,
        thread: NamespaceThread,
        targets: list[tuple[str, int]],
        rate: float,
        *,
        path: str = "/hostname",
        request_seconds: float = 2.0,
    ) -> None:
        self._thread = thread
        self._targets = targets
        self._interval = 1.0 / rate
        self._path = path
        self._request_seconds = request_seconds
        self.result = LoadResult()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> SteadyLoad:
        self._task = asyncio.create_task(self._run(), name="steady load")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop sending; wait for the requests in flight (each has its own time limit)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self._request_seconds + 1)
        for task in self._inflight:
            task.cancel()
        self.result.records.sort(key=lambda r: r.at)

    async def _run(self) -> None:
        next_at = time.monotonic()
        i = 0
        while True:
            host, port = self._targets[i % len(self._targets)]
            i += 1
            task = asyncio.create_task(self._one(host, port))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            next_at += self._interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _one(self, host: str, port: int) -> None:
        record = await one_request(self._thread, host, port, self._path, self._request_seconds)
        self.result.records.append(record)
