"""The benchmark scenarios: what load each drives through a contender, and what it reads
from /proc around it (CPU time of the contender and of the backend, peak memory)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.contenders import LARGE_PATH, SMALL_PATH, Backend, Running, http_status
from bench.load import LoadResult, bulk_transfer, h2_supported, hold_idle, run_h2load, run_wrk
from bench.procstat import cpu_seconds, descendants, peak_rss_kib, rss_kib
from bench.tools import Tools


class Skipped(Exception):
    """The contender does not offer what the scenario needs (the reason is the message)."""


@dataclass(frozen=True)
class Settings:
    """How long and how hard every scenario drives its load."""

    duration: float
    warmup: float
    keepalive_connections: int = 64
    close_connections: int = 32
    idle_connections: int = 10_000
    idle_limit: int = 10_000
    h2_clients: int = 16
    h2_streams: int = 10


@dataclass
class Context:
    """What every scenario run needs: the programs, the backend and the settings."""

    tools: Tools
    backend: Backend
    settings: Settings


@dataclass
class Sample:
    """One scenario run against one contender in one round.

    ``rate`` is the scenario's headline number in its ``unit``; ``cpu_us_per_op`` the
    contender's CPU time (user + system, all its processes) per request, connection or
    MB; ``backend_cpu`` the backend's CPU time per second of wall time (1.0 = one core:
    then the backend, not the proxy, would be the limit).
    """

    scenario: str
    contender: str
    round: int
    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    cpu_us_per_op: float | None = None
    peak_rss_mib: float | None = None
    backend_cpu: float | None = None
    operations: float = 0.0
    errors: int = 0
    status: str = "ok"  # "ok", "skipped" or "failed"
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


Runner = Callable[[Context, Running, Sample], None]


@dataclass(frozen=True)
class Scenario:
    """A named load pattern; ``runner`` fills a ``Sample``."""

    name: str
    title: str
    unit: str
    per: str  # what CPU time is counted per: "request", "connection", "MB"
    higher_is_better: bool
    runner: Runner
    reference: bool = True  # the backend alone ("direct") can be measured too


def _measured(
    ctx: Context, running: Running, sample: Sample, action: Callable[[], LoadResult]
) -> None:
    """Run ``action`` and read CPU and memory around it into ``sample``."""
    pids = descendants(running.pid)
    backend_pids = descendants(ctx.backend.running.pid)
    cpu_before, backend_before = cpu_seconds(pids), cpu_seconds(backend_pids)
    started = time.perf_counter()
    result = action()
    wall = time.perf_counter() - started
    cpu_after, backend_after = cpu_seconds(pids), cpu_seconds(backend_pids)
    if result.operations <= 0:
        raise RuntimeError("no request, connection or byte got through")
    sample.rate = result.rate
    sample.p50_ms, sample.p99_ms, sample.mean_ms = result.p50_ms, result.p99_ms, result.mean_ms
    sample.operations = result.operations
    sample.errors = result.errors
    sample.cpu_us_per_op = (cpu_after - cpu_before) / result.operations * 1e6
    sample.backend_cpu = (backend_after - backend_before) / wall
    sample.peak_rss_mib = peak_rss_kib(descendants(running.pid)) / 1024
    sample.extra["proxy_cpu"] = (cpu_after - cpu_before) / wall


def _url(address: tuple[str, int], path: str = SMALL_PATH) -> str:
    return f"http://{address[0]}:{address[1]}{path}"


def _wrk(ctx: Context, url: str, *, close: bool, connections: int, duration: float) -> LoadResult:
    wrk = ctx.tools.paths["wrk"]
    assert wrk is not None
    return run_wrk(wrk, url, duration=duration, connections=connections, close=close)


def _http_load(layer: str, close: bool) -> Runner:
    def run(ctx: Context, running: Running, sample: Sample) -> None:
        address = running.endpoints.l7 if layer == "l7" else running.endpoints.l4
        url = _url(address)
        settings = ctx.settings
        connections = settings.close_connections if close else settings.keepalive_connections
        if settings.warmup > 0:
            _wrk(ctx, url, close=close, connections=connections, duration=settings.warmup)
        _measured(
            ctx,
            running,
            sample,
            lambda: _wrk(
                ctx, url, close=close, connections=connections, duration=settings.duration
            ),
        )

    return run


def _bulk(ctx: Context, running: Running, sample: Sample) -> None:
    host, port = running.endpoints.l4
    _measured(
        ctx, running, sample, lambda: bulk_transfer(host, port, LARGE_PATH, ctx.settings.duration)
    )


def _idle(layer: str) -> Runner:
    def run(ctx: Context, running: Running, sample: Sample) -> None:
        address = running.endpoints.l7 if layer == "l7" else running.endpoints.l4
        count = ctx.settings.idle_connections
        # An L4 proxy holds two descriptors per connection (client and backend), and
        # HAProxy reserves two per connection at L7 too: stay under the open-file limit
        # every process inherits (all contenders get the same count).
        count = min(count, ctx.settings.idle_limit)
        # One request first, so that state built lazily once (pools, caches) is not
        # counted as per-connection memory.
        if http_status(*address) != 200:
            raise RuntimeError(f"{running.name} does not answer on {address}")
        pids = descendants(running.pid)
        before = rss_kib(pids)
        started = time.perf_counter()
        after, opened = hold_idle(
            *address, SMALL_PATH, count, lambda: rss_kib(descendants(running.pid))
        )
        if opened == 0:
            raise RuntimeError("no connection could be opened")
        sample.rate = (after - before) / opened
        sample.operations = opened
        sample.errors = count - opened
        sample.peak_rss_mib = peak_rss_kib(descendants(running.pid)) / 1024
        sample.extra["connections"] = opened
        sample.extra["open_seconds"] = time.perf_counter() - started

    return run


def _h2(ctx: Context, running: Running, sample: Sample) -> None:
    h2load = ctx.tools.paths.get("h2load")
    if h2load is None:
        raise Skipped("h2load is not installed")
    if running.endpoints.h2 is None:
        raise Skipped(f"{running.name} offers no h2c listener")
    url = _url(running.endpoints.h2)
    if not h2_supported(h2load, url):
        raise Skipped(f"{running.name} does not answer HTTP/2 (prior knowledge) on {url}")
    s = ctx.settings
    if s.warmup > 0:
        run_h2load(h2load, url, duration=s.warmup, clients=s.h2_clients, streams=s.h2_streams)
    _measured(
        ctx,
        running,
        sample,
        lambda: run_h2load(
            h2load, url, duration=s.duration, clients=s.h2_clients, streams=s.h2_streams
        ),
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "l7-keepalive",
            "L7 HTTP/1.1, keep-alive, small responses (wrk -c64)",
            "req/s",
            "request",
            True,
            _http_load("l7", close=False),
        ),
        Scenario(
            "l7-close",
            "L7 HTTP/1.1, a new connection per request (wrk -c32, Connection: close)",
            "req/s",
            "request",
            True,
            _http_load("l7", close=True),
        ),
        Scenario(
            "l4-short",
            "L4 TCP, short connections (HTTP over TCP, one request each, wrk -c32)",
            "conn/s",
            "connection",
            True,
            _http_load("l4", close=True),
        ),
        Scenario(
            "l4-bulk",
            "L4 TCP, bulk transfer through one connection (64 MiB GETs)",
            "MB/s",
            "MB",
            True,
            _bulk,
        ),
        Scenario(
            "l7-idle",
            "L7 idle keep-alive client connections (memory per connection)",
            "KiB/conn",
            "connection",
            False,
            _idle("l7"),
            reference=False,
        ),
        Scenario(
            "l4-idle",
            "L4 idle TCP connections, client and backend legs (memory per connection)",
            "KiB/conn",
            "connection",
            False,
            _idle("l4"),
            reference=False,
        ),
        Scenario(
            "h2",
            "HTTP/2 (h2c prior knowledge), h2load -c16 -m10",
            "req/s",
            "request",
            True,
            _h2,
            reference=False,
        ),
    )
}
