"""HttpDataPlane: seaway's L7 data plane, an HTTP/1.1 and HTTP/2 reverse proxy in this
process, with TLS termination."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from seaway.accesslog import AccessLog
from seaway.core.config import DesiredConfig, HttpListener
from seaway.core.health import HealthEvent
from seaway.core.sharing import SharedState
from seaway.dataplane.base import ApplyResult
from seaway.dataplane.http.downstream import ClientConnection, HttpServer
from seaway.dataplane.http.h2_downstream import H2ClientConnection
from seaway.dataplane.http.h2_upstream import H2UpstreamPool
from seaway.dataplane.http.runtime import HttpRuntime
from seaway.dataplane.http.upstream import UpstreamPool
from seaway.dataplane.plane_base import ServingPlane
from seaway.dataplane.runtime import wait_until_drained


class HttpDataPlane(ServingPlane[HttpRuntime]):
    """Serves the HTTP listeners of a ``DesiredConfig`` (Ingress and Gateway routes).

    ``apply`` opens, closes or updates listeners in place: new routes take effect for
    the next request of every open connection, and a configuration change never closes
    a connection, a request in flight or a tunnel (WebSocket). Each finished request
    goes to ``access_log`` (shared with the L4 plane) while it is enabled. Backend sets
    (``http_backend_sets``) are held as ``LiveBackendSet``s and updated in place; each
    request picks a backend through the set's balancer. Owns every socket, connection,
    task and timer it creates; ``close`` ends them.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        loop: asyncio.AbstractEventLoop | None = None,
        on_health_event: Callable[[HealthEvent], None] | None = None,
        access_log: AccessLog | None = None,
        shared: SharedState | None = None,
    ) -> None:
        super().__init__(
            rng=rng,
            loop=loop,
            on_health_event=on_health_event,
            access_log=access_log,
            shared=shared,
        )
        self._servers: dict[str, HttpServer] = {}

    def _new_runtime(self, loop: asyncio.AbstractEventLoop) -> HttpRuntime:
        runtime = HttpRuntime(loop, self._rng)
        runtime.pool = UpstreamPool(runtime)
        runtime.h2_pool = H2UpstreamPool(runtime)
        return runtime

    async def _apply(self, config: DesiredConfig) -> ApplyResult:
        runtime = self._ensure_runtime()
        old = self._applied
        runtime.apply_settings(config.settings)

        for key, spec in config.http_backend_sets.items():
            live = runtime.sets.get(key)
            if live is None:
                runtime.sets[key] = self._live_set(spec)
            elif live.spec != spec:
                live.update(spec)
        for key in [k for k in runtime.sets if k not in config.http_backend_sets]:
            del runtime.sets[key]
        runtime.refresh_wanted()
        assert runtime.pool is not None and runtime.h2_pool is not None
        runtime.pool.prune()
        runtime.h2_pool.prune()

        for key in [k for k in self._servers if k not in config.http_listeners]:
            self._servers.pop(key).close()
        for key in [k for k in self._failed if k not in config.http_listeners]:
            del self._failed[key]
        for key, listener in config.http_listeners.items():
            server = self._servers.get(key)
            if server is not None:
                if server.spec != listener:
                    server.update(listener)
            else:
                await self._open(listener)
        if old.http_listeners != config.http_listeners:
            runtime.forget_weights()

        self._applied = config
        self._prune_counters(config)
        return ApplyResult(errors=dict(self._failed))

    async def _open(self, spec: HttpListener) -> None:
        server = HttpServer(spec, self._ensure_runtime())
        try:
            await server.open()
        except OSError as exc:
            self._failed[spec.key] = f"cannot listen on {spec.key}: {exc.strerror or exc}"
            return
        self._failed.pop(spec.key, None)
        self._servers[spec.key] = server

    def _prune_counters(self, config: DesiredConfig) -> None:
        self._ensure_runtime().prune(config.http_listeners, config.http_backend_sets)

    def connections(self) -> tuple[ClientConnection | H2ClientConnection, ...]:
        """Client connections open now (for tests and the admin state)."""
        if self._runtime is None:
            return ()
        return tuple(self._runtime.connections)

    def h2_upstream_connections(self, backend_key: str | None = None) -> int:
        """Open HTTP/2 connections to backends, to one or to all."""
        if self._runtime is None or self._runtime.h2_pool is None:
            return 0
        return self._runtime.h2_pool.connection_count(backend_key)

    def stop_accepting(self) -> None:
        """Close every listener; HTTP/2 connections get GOAWAY, HTTP/1.1 ones close after
        the requests already read; everything in flight finishes."""
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        if self._runtime is not None:
            for connection in list(self._runtime.connections):
                connection.drain()

    async def wait_drained(self, limit: float | None) -> int:
        """Wait until every client connection ended or ``limit`` s passed; how many are left."""
        runtime = self._runtime
        if runtime is None:
            return 0
        return await wait_until_drained(lambda: len(runtime.connections), limit)

    def idle_upstream_connections(self, backend_key: str | None = None) -> int:
        """Pooled idle connections, to one backend or to all."""
        if self._runtime is None or self._runtime.pool is None:
            return 0
        return self._runtime.pool.idle_count(backend_key)

    async def close(self) -> None:
        """Stop listening, close every connection, and wait for exchange tasks to end."""
        async with self._lock:
            self._closed = True
            for server in self._servers.values():
                server.close()
            self._servers.clear()
            runtime = self._runtime
            if runtime is None:
                return
            for connection in list(runtime.connections):
                connection.abort_now()
            if runtime.pool is not None:
                runtime.pool.close_all()
            if runtime.h2_pool is not None:
                runtime.h2_pool.close_all()
            tasks = list(runtime.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)
