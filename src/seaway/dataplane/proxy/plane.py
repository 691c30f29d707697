"""ProxyDataPlane: seaway's embedded data plane, an L4 proxy in user space."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from seaway.accesslog import AccessLog
from seaway.core.config import DesiredConfig, Listener
from seaway.core.diff import diff_configs
from seaway.core.health import HealthEvent
from seaway.core.sharing import SharedState
from seaway.dataplane.base import ApplyResult
from seaway.dataplane.plane_base import ServingPlane
from seaway.dataplane.proxy.runtime import ProxyRuntime
from seaway.dataplane.proxy.tcp import TcpConnection, TcpListener
from seaway.dataplane.proxy.udp import UdpListener
from seaway.dataplane.runtime import wait_until_drained

# How often idle UDP flows and sessionAffinity entries are swept, at most. Lookups
# already ignore expired entries; the sweep only returns their memory and sockets.
MAX_SWEEP_INTERVAL = 1.0
MIN_SWEEP_INTERVAL = 0.05


class ProxyDataPlane(ServingPlane[ProxyRuntime]):
    """Serves a ``DesiredConfig`` with TCP and UDP listeners in this process.

    ``apply`` moves from the configuration applied last to the new one and touches
    only what changed: listeners are opened, closed or updated in place, and the
    balancer of a changed backend set is rebuilt. Established TCP connections are
    never closed by a configuration change (kube-proxy's conntrack keeps them too).
    Owns every socket, connection, task and timer it creates; ``close`` ends them.
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
        # Connections whose backend left its set, and when they are reset
        # (drain_timeout_seconds > 0 only); the timer fires at the earliest.
        self._draining: dict[TcpConnection, float] = {}
        self._drain_timer: asyncio.TimerHandle | None = None
        self._accepting = True
        self._tcp: dict[str, TcpListener] = {}
        self._udp: dict[str, UdpListener] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def _new_runtime(self, loop: asyncio.AbstractEventLoop) -> ProxyRuntime:
        return ProxyRuntime(loop)

    async def _apply(self, config: DesiredConfig) -> ApplyResult:
        runtime = self._ensure_runtime()
        diff = diff_configs(self._applied, config)
        runtime.settings = config.settings

        # Backend sets first, so that new and changed listeners find theirs.
        for key in (*diff.backend_sets_added, *diff.backend_sets_changed):
            spec = config.backend_sets[key]
            live = runtime.sets.get(key)
            if live is None:
                runtime.sets[key] = self._live_set(spec)
            else:
                live.update(spec)

        for key in diff.listeners_removed:
            self._failed.pop(key, None)
            tcp = self._tcp.pop(key, None)
            if tcp is not None:
                tcp.close()
            udp = self._udp.pop(key, None)
            if udp is not None:
                udp.close()

        for key in diff.listeners_changed:
            listener = config.listeners[key]
            tcp = self._tcp.get(key)
            if tcp is not None:
                tcp.update(listener)
            udp = self._udp.get(key)
            if udp is not None:
                udp.update(listener)

        if diff.settings_changed:
            for udp in self._udp.values():
                udp.apply_settings()

        to_open = set(diff.listeners_added) | {k for k in self._failed if k in config.listeners}
        if not self._accepting:
            to_open = set()  # shutting down: no new listener opens
        for key in sorted(to_open):
            await self._open(config.listeners[key])

        for key in diff.backend_sets_removed:
            runtime.sets.pop(key, None)
        self._follow_draining(config)

        self._applied = config
        self._prune_counters(config)
        self._schedule_sweep()
        return ApplyResult(errors=dict(self._failed))

    async def _open(self, spec: Listener) -> None:
        runtime = self._ensure_runtime()
        listener: TcpListener | UdpListener
        listener = (
            TcpListener(spec, runtime) if spec.protocol == "TCP" else UdpListener(spec, runtime)
        )
        try:
            await listener.open()
        except OSError as exc:
            # EADDRNOTAVAIL (address not on this host), EADDRINUSE, EACCES (< 1024).
            self._failed[spec.key] = f"cannot listen on {spec.key}: {exc.strerror or exc}"
            return
        self._failed.pop(spec.key, None)
        if isinstance(listener, TcpListener):
            self._tcp[spec.key] = listener
        else:
            self._udp[spec.key] = listener

    def _follow_draining(self, config: DesiredConfig) -> None:
        """Give connections to backends that left their set ``drain_timeout_seconds``.

        A connection whose backend comes back before then is kept. With no timeout
        (0, the default) connections go on until they end, as kube-proxy's conntrack
        entries do.
        """
        timeout = config.settings.drain_timeout_seconds
        runtime = self._ensure_runtime()
        if timeout <= 0:
            self._draining.clear()
            return
        now = runtime.loop.time()
        for connection in self.tcp_connections():
            backend = connection.backend
            if backend is None:
                continue
            live = runtime.sets.get(connection.backend_set_key)
            if live is not None and live.has(backend):
                self._draining.pop(connection, None)
            else:
                self._draining.setdefault(connection, now + timeout)
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if not self._draining or self._runtime is None:
            return
        when = min(self._draining.values())
        self._drain_timer = self._runtime.loop.call_at(when, self._drain_expired)

    def _drain_expired(self) -> None:
        self._drain_timer = None
        runtime = self._runtime
        if runtime is None or self._closed:
            return
        now = runtime.loop.time()
        for connection, deadline in list(self._draining.items()):
            if connection not in runtime.connections:
                del self._draining[connection]  # ended on its own
            elif deadline <= now:
                del self._draining[connection]
                connection.abort()  # RST both legs: the drain time is over
        self._schedule_drain()

    def stop_accepting(self) -> None:
        """Close every listener; established connections go on (shutdown, first step)."""
        self._accepting = False
        for tcp in self._tcp.values():
            tcp.close()
        for udp in self._udp.values():
            udp.close()
        self._tcp.clear()
        self._udp.clear()

    def open_connections(self) -> int:
        """TCP connections still open."""
        return len(self.tcp_connections())

    async def wait_drained(self, limit: float | None) -> int:
        """Wait until every TCP connection ended, or ``limit`` s (None: no limit).

        Returns how many are still open.
        """
        return await wait_until_drained(self.open_connections, limit)

    def _prune_counters(self, config: DesiredConfig) -> None:
        self._ensure_runtime().prune(config.listeners, config.backend_sets)

    def _schedule_sweep(self) -> None:
        if self._sweeper is not None or self._runtime is None:
            return
        interval = self._sweep_interval()
        self._sweeper = self._runtime.loop.call_later(interval, self._sweep)

    def _sweep_interval(self) -> float:
        runtime = self._ensure_runtime()
        timeouts = [runtime.settings.udp_idle_timeout_seconds]
        timeouts.extend(
            live.spec.affinity_timeout
            for live in runtime.sets.values()
            if live.spec.affinity_timeout
        )
        # A quarter of the shortest timeout keeps an expired entry's extra life short.
        return max(MIN_SWEEP_INTERVAL, min(MAX_SWEEP_INTERVAL, min(timeouts) / 4))

    def _sweep(self) -> None:
        self._sweeper = None
        if self._closed or self._runtime is None:
            return
        now = self._runtime.loop.time()
        for udp in self._udp.values():
            udp.expire(now)
        for live in self._runtime.sets.values():
            live.expire(now)
        self._schedule_sweep()

    def tcp_connections(self) -> tuple[TcpConnection, ...]:
        """The TCP connections open now (for the admin state and for tests)."""
        if self._runtime is None:
            return ()
        return tuple(c for c in self._runtime.connections if isinstance(c, TcpConnection))

    def udp_flow_count(self) -> int:
        """How many UDP flows are open now, over all listeners."""
        return sum(len(udp.flows) for udp in self._udp.values())

    async def close(self) -> None:
        """Stop listening, reset every connection, and wait for connect tasks to end."""
        async with self._lock:
            self._closed = True
            if self._sweeper is not None:
                self._sweeper.cancel()
                self._sweeper = None
            if self._drain_timer is not None:
                self._drain_timer.cancel()
                self._drain_timer = None
            self._draining.clear()
            for tcp in self._tcp.values():
                tcp.close()
            for udp in self._udp.values():
                udp.close()
            self._tcp.clear()
            self._udp.clear()
            runtime = self._runtime
            if runtime is None:
                return
            for connection in list(runtime.connections):
                connection.abort()
            tasks = list(runtime.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            # Let the transports deliver connection_lost before the caller moves on.
            await asyncio.sleep(0)
