"""The running load balancer: source -> core -> data plane, plus the admin API.

``Seaway`` owns one file source, one data plane and one admin server. Every
configuration it applies comes from a ``ClusterState`` that validated; an invalid
change is reported (log and admin state) and the last good configuration keeps
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seaway import __version__
from seaway.accesslog import AccessLog, AccessLogSpec
from seaway.admin.auth import read_token_file
from seaway.admin.metrics import MetricsEndpoint, MetricsView, ReloadStats
from seaway.admin.server import AdminServer
from seaway.core.config import DesiredConfig, HealthCheck, join_host_port
from seaway.core.health import HealthEvent, HealthTracker
from seaway.core.health_timeline import timeline_warnings
from seaway.core.plan import plan
from seaway.dataplane.base import BackendCounters, Counters, DataPlane, DrainingDataPlane
from seaway.dataplane.http.plane import HttpDataPlane
from seaway.dataplane.http.snapshot import routes_snapshot
from seaway.dataplane.proxy.plane import ProxyDataPlane
from seaway.health.scheduler import HealthCheckScheduler
from seaway.health.shared_checks import HealthFollower, ProbePublisher
from seaway.model.cluster import ClusterState
from seaway.model.errors import ConfigError, InvalidConfiguration
from seaway.shared_state import WorkerState
from seaway.sources.files import FileSource, load_paths

log = logging.getLogger("seaway")


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _health_check_view(check: HealthCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "protocol": check.protocol,
        "port": check.port,
        "path": check.path if check.protocol == "http" else None,
        "intervalSeconds": check.interval,
        "timeoutSeconds": check.timeout,
        "healthyThreshold": check.healthy_threshold,
        "unhealthyThreshold": check.unhealthy_threshold,
    }


def _request_fields(c: BackendCounters | None) -> dict[str, Any]:
    """L7 request counters of a backend, present once an L7 data plane counted some."""
    if c is None or not (c.requests or c.requests_active):
        return {}
    return {
        "requests": c.requests,
        "requestsActive": c.requests_active,
        "responses": dict(c.responses),
    }


def _sum_counters(a: BackendCounters, b: BackendCounters) -> BackendCounters:
    """One backend's counters from two planes (histograms: the one that has samples)."""
    responses = dict(a.responses)
    for klass, count in b.responses.items():
        responses[klass] = responses.get(klass, 0) + count
    return BackendCounters(
        active=a.active + b.active,
        total=a.total + b.total,
        failed=a.failed + b.failed,
        bytes_to_backend=a.bytes_to_backend + b.bytes_to_backend,
        bytes_from_backend=a.bytes_from_backend + b.bytes_from_backend,
        connect_duration=a.connect_duration,
        requests_active=a.requests_active + b.requests_active,
        requests=a.requests + b.requests,
        responses=responses,
        request_duration=b.request_duration if b.requests else a.request_duration,
    )


def default_state_file() -> Path:
    """Where assigned addresses are remembered when nothing else is configured."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "seaway" / "addresses.json"


@dataclass(frozen=True, slots=True)
class LastError:
    at: float
    errors: tuple[ConfigError, ...]


class AddressMemory:
    """Assigned LoadBalancer addresses, kept in a JSON file across restarts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.addresses: dict[str, tuple[str, ...]] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text())
                self.addresses = {str(k): tuple(str(a) for a in v) for k, v in raw.items()}
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                log.warning("ignoring unreadable address memory %s: %s", path, exc)

    def remember(self, config: DesiredConfig) -> None:
        current = {k: v.ingress for k, v in config.services.items() if v.ingress}
        current.update(config.route_addresses)  # Gateways' and the Ingress listener's
        if current == self.addresses:
            return
        self.addresses = current
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.addresses, indent=1, sort_keys=True))
            tmp.replace(self.path)  # atomic: a crash never leaves half a file
        except OSError as exc:
            log.warning("cannot write address memory %s: %s", self.path, exc)


def _draining_removed(counters: Counters, set_key: str, seen: set[str]) -> list[dict[str, Any]]:
    """Backends gone from a set whose connections are still open (draining), for the state."""
    rows = []
    for (key, backend_key), c in sorted(counters.backends.items()):
        if key != set_key or backend_key in seen or c.active <= 0:
            continue
        host, _, port = backend_key.rpartition(":")
        rows.append(
            {
                "address": host.strip("[]"),
                "port": int(port),
                "name": "",
                "weight": 0,
                "draining": True,
                "node": None,
                "zone": None,
                "ready": False,
                "serving": False,
                "terminating": False,
                "usable": False,
                "reason": "removed from the set; open connections draining",
                "health": None,
                "active": c.active,
                "total": c.total,
                "failed": c.failed,
                "bytesToBackend": c.bytes_to_backend,
                "bytesFromBackend": c.bytes_from_backend,
                **_request_fields(c),
            }
        )
    return rows


class Seaway:
    """One load balancer instance serving the manifests at ``paths``.

    Health: probe results (``HealthCheckScheduler``) and connection outcomes (the
    proxy's ``on_health_event``) go through ``record_health_event`` into the
    ``HealthTracker``; when a backend leaves or rejoins its set, the configuration is
    planned again from the same snapshot and re-applied, so only the sets that
    changed change.

    Lifecycle: ``request_shutdown`` (SIGTERM) fails ``/readyz`` at once, keeps
    accepting for the shutdown delay, stops accepting, waits for open connections
    (up to ``drainTimeoutSeconds``, 0: until they end), then ``serve`` returns.
    ``request_reload`` (SIGHUP) reads the files at once.

    ``shared_state`` (a worker of ``seaway run --workers N``): the connection counts
    and ClientIP affinity shared with the other workers, given to both proxies, and
    the active health checks: worker 0 probes and publishes each result
    (``ProbePublisher``), the others replay them (``HealthFollower``, a task of
    ``serve``) instead of probing.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        admin_address: str | None = None,
        state_file: Path | None = None,
        dataplanes: Sequence[DataPlane] | None = None,
        rng: random.Random | None = None,
        shutdown_delay: float | None = None,
        admin_token_file: str | None = None,
        access_log: AccessLogSpec | None = None,
        dataplane: str = "proxy",
        shared_state: WorkerState | None = None,
    ) -> None:
        self._rng = rng or random.Random()
        # Observability (docs/operations.md): the access log writer (its target comes
        # from ``access_log`` or the SeawayConfig's accessLog), and reload statistics.
        self._admin_token_file_override = admin_token_file
        self._access_log_override = access_log
        self.access_log = AccessLog(access_log)
        self.reloads = ReloadStats()
        self._paths = tuple(paths)
        self._source = FileSource(paths, on_change=self._on_change, on_error=self._on_error)
        self.health = HealthTracker()
        self._health_changed = False
        self._health_timer: asyncio.TimerHandle | None = None
        self._publisher: ProbePublisher | None = None
        self._follower: HealthFollower | None = None
        if shared_state is not None and shared_state.index == 0:
            self._publisher = ProbePublisher(
                shared_state.health.publisher(), lambda: asyncio.get_running_loop().time()
            )
        elif shared_state is not None:
            self._follower = HealthFollower(
                shared_state.health.reader(),
                self.record_health_event,
                HealthCheckScheduler(self.record_health_event, rng=self._rng),
            )
        self._probes = HealthCheckScheduler(
            self.record_health_event,
            rng=self._rng,
            on_result=self._publisher.publish if self._publisher is not None else None,
        )
        # Each data plane serves its part of the desired configuration (the L4 proxy:
        # listeners of LoadBalancer Services) and ignores the rest.
        # ``dataplane`` "nftables": the kernel serves LoadBalancer Services (root; raises
        # NftablesUnavailable otherwise), the HTTP proxy still serves routes.
        l4: DataPlane
        if dataplane == "nftables":
            from seaway.dataplane.nftables.plane import NftablesDataPlane  # noqa: PLC0415

            l4 = NftablesDataPlane()
        else:
            l4 = ProxyDataPlane(
                rng=self._rng,
                on_health_event=self.record_health_event,
                access_log=self.access_log,
                shared=shared_state.plane("l4") if shared_state is not None else None,
            )
        self._dataplanes: list[DataPlane] = list(
            dataplanes
            or [
                l4,
                HttpDataPlane(
                    rng=self._rng,
                    on_health_event=self.record_health_event,
                    access_log=self.access_log,
                    shared=shared_state.plane("http") if shared_state is not None else None,
                ),
            ]
        )
        self._shutdown_delay_override = shutdown_delay
        self._stopping = asyncio.Event()
        self._reload_task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        self._admin_address_override = admin_address
        self._state_file = state_file
        self._memory: AddressMemory | None = None
        self.state = ClusterState()
        self.config = DesiredConfig()
        self.generation = 0
        self.applied_at = 0.0
        self.last_error: LastError | None = None
        self.listener_errors: dict[str, str] = {}
        self._pending: ClusterState | None = None
        self._wake = asyncio.Event()
        self._ready = False
        self.admin: AdminServer | None = None

    # -- callbacks from the source (synchronous, on the event loop) ----------------

    def _on_change(self, state: ClusterState) -> None:
        self._pending = state
        self._wake.set()

    def _on_error(self, errors: list[ConfigError]) -> None:
        self.last_error = LastError(time.time(), tuple(errors))
        self.reloads = replace(
            self.reloads, failures=self.reloads.failures + 1, last_errors=len(errors)
        )
        for error in errors:
            log.error(
                "invalid configuration, still serving the last good one: %s "
                "(fix the file: it is read again when saved)",
                error,
            )

    # -- health --------------------------------------------------------------------

    def record_health_event(self, event: HealthEvent) -> None:
        """Take one health result (a probe, a connect, an L7 response); re-plan if needed.

        Synchronous and cheap: the proxy calls it once per connection. Data planes and
        probers call it on the event loop; ``event.at`` is the loop's clock.
        """
        if self.health.apply(event):
            verdict = self.health.view(event.at).verdict(event.set_key, event.backend_key)
            log.warning(
                "backend %s of %s: %s (%s)",
                event.backend_key,
                event.set_key,
                verdict or "back in its set",
                event.kind,
            )
            self._health_changed = True
            self._wake.set()

    def _health_tick(self) -> None:
        self._health_timer = None
        self._health_changed = True
        self._wake.set()

    def _schedule_health_tick(self, now: float) -> None:
        if self._health_timer is not None:
            self._health_timer.cancel()
            self._health_timer = None
        when = self.health.next_change(now)
        if when is not None:
            loop = asyncio.get_running_loop()
            self._health_timer = loop.call_at(when, self._health_tick)

    # -- signals -------------------------------------------------------------------

    def request_shutdown(self) -> None:
        """Begin the graceful shutdown (SIGTERM): see the class docstring."""
        if not self._stopping.is_set():
            self._ready = False
            self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_reload(self) -> None:
        """Read the files now (SIGHUP), without waiting for the next poll."""
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        log.info("SIGHUP: reading %s", ", ".join(self._paths))
        try:
            state = await asyncio.to_thread(load_paths, self._paths)
        except InvalidConfiguration as exc:
            self._on_error(list(exc.errors))
            return
        self._on_change(state)

    @property
    def shutdown_delay(self) -> float:
        if self._shutdown_delay_override is not None:
            return self._shutdown_delay_override
        return self.state.settings.shutdown_delay_seconds

    async def _shutdown(self) -> None:
        delay = self.shutdown_delay
        log.info("shutting down: /readyz fails; still accepting for %.1f s", delay)
        await asyncio.sleep(delay)
        draining = [dp for dp in self._dataplanes if isinstance(dp, DrainingDataPlane)]
        for dataplane in draining:
            dataplane.stop_accepting()
        limit = self.state.settings.drain_timeout_seconds or None
        log.info(
            "stopped accepting; draining open connections (%s)",
            f"up to {limit:g} s" if limit else "until they end",
        )
        left = 0
        for dataplane in draining:
            left += await dataplane.wait_drained(limit)
        if left:
            log.warning("drain time over: resetting %d connection(s)", left)
        log.info("drained; exiting")

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Load (raising InvalidConfiguration on bad input), apply, open the admin API."""
        state = self._source.load()
        path = self._state_file
        if path is None and state.settings.state_file:
            path = Path(state.settings.state_file)
        self._memory = AddressMemory(path if path is not None else default_state_file())
        self.access_log.start()
        await self._apply(state)
        address = self._admin_address_override or state.settings.admin_address
        token_file = self._admin_token_file_override or state.settings.admin_token_file
        token = read_token_file(token_file) if token_file else None
        self.admin = AdminServer(
            address,
            self.snapshot,
            ready=lambda: self._ready,
            metrics=MetricsEndpoint(self.metrics_view),
            token=token,
        )
        await self.admin.start()
        self._ready = True
        log.info(
            "admin API on http://%s/ (status page, /api/v1/state, /metrics)",
            self.admin.bound_address,
        )
        if token is not None:
            log.info(
                "admin API authentication is on: requests need Authorization: Bearer <token> "
                "from %s (/healthz, /readyz and the page at / are open)",
                token_file,
            )

    async def serve(self) -> None:
        """Watch the sources and apply changes until cancelled, or until a requested
        shutdown has drained."""
        async with asyncio.TaskGroup() as tasks:
            source = tasks.create_task(self._source.run())
            reconcile = tasks.create_task(self._reconcile())
            follow = tasks.create_task(self._follower.run()) if self._follower else None
            await self._stopping.wait()
            # Changes still apply during the delay and the drain: a backend that goes
            # away meanwhile must still stop getting connections.
            await self._shutdown()
            source.cancel()
            reconcile.cancel()
            if follow is not None:
                follow.cancel()

    async def close(self) -> None:
        self._ready = False
        if self._health_timer is not None:
            self._health_timer.cancel()
            self._health_timer = None
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reload_task
        await self._probes.close()
        if self._follower is not None:
            await self._follower.close()
        if self.admin is not None:
            await self.admin.close()
        for dataplane in self._dataplanes:
            await dataplane.close()
        # After the data planes: connections they reset are logged too.
        await asyncio.to_thread(self.access_log.close)

    async def run(self) -> None:
        """start(), serve() until cancelled, close()."""
        await self.start()
        try:
            await self.serve()
        finally:
            with contextlib.suppress(Exception):
                await self.close()

    async def _reconcile(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            state, self._pending = self._pending, None
            if state is not None:
                await self._apply(state)
            elif self._health_changed:
                await self._apply(self.state, reason="health")

    async def _apply(self, state: ClusterState, reason: str = "configuration") -> None:
        assert self._memory is not None
        self._health_changed = False
        now = asyncio.get_running_loop().time()
        config = plan(state, self._memory.addresses, self.health.view(now))
        self.health.sync(config)
        listener_errors: dict[str, str] = {}
        for dataplane in self._dataplanes:
            result = await dataplane.apply(config)
            listener_errors.update(result.errors)
        targets = self.health.probe_targets(config)
        if self._follower is not None:
            self._follower.sync(targets)  # worker 0 probes them for this worker
        else:
            self._probes.sync(targets)
            if self._publisher is not None:
                self._publisher.sync(targets, now)
        self._schedule_health_tick(now)
        if state is not self.state:
            self._warn_timeline(state)
        self.state = state
        self.config = config
        self.generation += 1
        self.applied_at = time.time()
        if reason == "configuration":
            # A re-plan for health applies the same files: a refused change stays shown.
            self.last_error = None
            self.reloads = replace(
                self.reloads,
                successes=self.reloads.successes + 1,
                last_success=self.applied_at,
                last_errors=0,
            )
            self._configure_access_log(state)
        self.listener_errors = listener_errors
        self._memory.remember(config)
        for key, why in listener_errors.items():
            log.error(
                "cannot open listener %s: %s (seaway retries at every change; free the port, "
                "or give the Service another address or port)",
                key,
                why,
            )
        log.info(
            "applied configuration %d (%s): %d services, %d listeners",
            self.generation,
            reason,
            len(config.services),
            len(config.listeners),
        )

    def _warn_timeline(self, state: ClusterState) -> None:
        """Log each timeline warning once (``seaway validate`` prints them too)."""
        warnings = timeline_warnings(state)
        for warning in warnings:
            if warning not in self._warned:
                log.warning("timeline: %s", warning)
        self._warned = set(warnings)

    def _configure_access_log(self, state: ClusterState) -> None:
        spec = self._access_log_override
        settings = state.settings.access_log
        if spec is None and settings.path is not None:
            spec = AccessLogSpec(settings.path, settings.format)
        if spec != self.access_log.spec:
            log.info(
                "access log: %s",
                f"{spec.format} lines to {spec.path}" if spec is not None else "off",
            )
        self.access_log.configure(spec)

    # -- admin state -------------------------------------------------------------

    def metrics_view(self) -> MetricsView:
        """What ``/metrics`` reports, read at scrape time."""
        access = self.access_log
        return MetricsView(
            version=__version__,
            config=self.config,
            counters=self.counters(),
            reloads=self.reloads,
            generation=self.generation,
            listener_errors=self.listener_errors,
            access_log=(access.written, access.dropped) if access.enabled else None,
        )

    def counters(self) -> Counters:
        """Every data plane's counters in one view (keys do not overlap between planes)."""
        if len(self._dataplanes) == 1:
            return self._dataplanes[0].counters()
        merged = Counters()
        for dataplane in self._dataplanes:
            counters = dataplane.counters()
            for key, c in counters.backends.items():
                earlier = merged.backends.get(key)
                # The L4 and L7 planes may serve the same backend of the same set.
                merged.backends[key] = c if earlier is None else _sum_counters(earlier, c)
            merged.listeners.update(counters.listeners)
        return merged

    def snapshot(self) -> dict[str, Any]:
        """The admin API's view: services, addresses, backends with live counters."""
        counters = self.counters()
        services: list[dict[str, Any]] = []
        for key in sorted(self.config.services):
            view = self.config.services[key]
            namespace, name = key.split("/", 1)
            ports = []
            for set_key in view.ports:
                backend_set = self.config.backend_sets.get(set_key)
                if backend_set is None:
                    continue
                service_port = int(set_key.rsplit(":", 1)[1].split("/", 1)[0])
                endpoints = []
                weights = {b.key: b.weight for b in backend_set.backends}
                seen: set[str] = set()
                for ep in backend_set.endpoints:
                    backend_key = join_host_port(ep.address, ep.port)
                    seen.add(backend_key)
                    c = counters.backends.get((set_key, backend_key))
                    endpoints.append(
                        {
                            "address": ep.address,
                            "port": ep.port,
                            "name": ep.name,
                            "weight": weights.get(backend_key, 0),
                            # Out of new-connection selection, with connections still open.
                            "draining": bool(not ep.usable and c is not None and c.active > 0),
                            "node": ep.node,
                            "zone": ep.zone,
                            "ready": ep.ready,
                            "serving": ep.serving,
                            "terminating": ep.terminating,
                            "usable": ep.usable,
                            "reason": ep.reason,
                            "health": self.health.status(
                                set_key, join_host_port(ep.address, ep.port)
                            )
                            if backend_set.health_check is not None
                            else None,
                            "active": c.active if c else 0,
                            "total": c.total if c else 0,
                            "failed": c.failed if c else 0,
                            "bytesToBackend": c.bytes_to_backend if c else 0,
                            "bytesFromBackend": c.bytes_from_backend if c else 0,
                            **_request_fields(c),
                        }
                    )
                endpoints.extend(_draining_removed(counters, set_key, seen))
                ports.append(
                    {
                        "key": set_key,
                        "name": backend_set.port_name,
                        "protocol": backend_set.protocol,
                        "port": service_port,
                        "listeners": [
                            lk
                            for lk in view.listeners
                            if self.config.listeners[lk].backend_set == set_key
                        ],
                        "algorithm": backend_set.algorithm,
                        "emptyReason": backend_set.empty_reason,
                        "hashOn": backend_set.hash_on,
                        "sessionAffinity": (
                            {"type": "ClientIP", "timeoutSeconds": backend_set.affinity_timeout}
                            if backend_set.affinity_timeout is not None
                            else None
                        ),
                        "proxyProtocol": backend_set.proxy_protocol,
                        "backendsMode": backend_set.mode,
                        "panic": backend_set.panic,
                        "healthCheck": _health_check_view(backend_set.health_check),
                        "endpoints": endpoints,
                    }
                )
            services.append(
                {
                    "namespace": namespace,
                    "name": name,
                    "type": view.type,
                    "message": view.message,
                    "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in view.ingress]}},
                    "ports": ports,
                }
            )
        last_error = None
        if self.last_error is not None:
            last_error = {
                "at": _utc(self.last_error.at),
                "errors": [
                    {"source": e.source, "object": e.obj, "field": e.field, "message": e.message}
                    for e in self.last_error.errors
                ],
            }
        listeners = []
        for lkey in sorted(self.config.listeners):
            listener = self.config.listeners[lkey]
            lc = counters.listeners.get(lkey)
            listeners.append(
                {
                    "key": lkey,
                    "protocol": listener.protocol,
                    "address": listener.address,
                    "port": listener.port,
                    "service": listener.service,
                    "backendSet": listener.backend_set,
                    "active": lc.active if lc else 0,
                    "total": lc.total if lc else 0,
                    "rejected": lc.rejected if lc else 0,
                    # From clients, counted by the kernel data plane (0 for the proxies).
                    "packets": lc.packets if lc else 0,
                    "bytes": lc.bytes if lc else 0,
                    "sourceRanges": [str(net) for net in listener.source_ranges],
                    "acceptProxyProtocol": listener.accept_proxy_protocol,
                    "error": self.listener_errors.get(lkey, ""),
                }
            )
        return {
            "version": __version__,
            "generation": self.generation,
            "appliedAt": _utc(self.applied_at) if self.applied_at else None,
            "lastError": last_error,
            "notes": list(self.state.notes),
            "listenerErrors": dict(self.listener_errors),
            "services": services,
            "listeners": listeners,
            **routes_snapshot(self.config, counters, self.listener_errors),
            # The nftables data plane's rules per Service, for `seaway explain`.
            "kernelRules": self.kernel_rules(),
        }

    def kernel_rules(self) -> dict[str, str]:
        """The kernel rules serving each Service (nftables data plane only), with comments."""
        rules: dict[str, str] = {}
        for dataplane in self._dataplanes:
            render = getattr(dataplane, "service_rules", None)
            if render is None:
                continue
            for key in self.config.services:
                text = render(key)
                if text:
                    rules[key] = text
        return rules
