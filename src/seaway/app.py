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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seaway import __version__
from seaway.admin.server import AdminServer
from seaway.core.config import DesiredConfig, join_host_port
from seaway.core.plan import plan
from seaway.dataplane.base import Counters, DataPlane
from seaway.dataplane.proxy.plane import ProxyDataPlane
from seaway.model.cluster import ClusterState
from seaway.model.errors import ConfigError
from seaway.sources.files import FileSource

log = logging.getLogger("seaway")


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class Seaway:
    """One load balancer instance serving the manifests at ``paths``."""

    def __init__(
        self,
        paths: Sequence[str],
        *,
        admin_address: str | None = None,
        state_file: Path | None = None,
        dataplanes: Sequence[DataPlane] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng or random.Random()
        self._source = FileSource(paths, on_change=self._on_change, on_error=self._on_error)
        # Each data plane serves its part of the desired configuration (the L4 proxy:
        # listeners of LoadBalancer Services) and ignores the rest.
        self._dataplanes: list[DataPlane] = list(dataplanes or [ProxyDataPlane(rng=self._rng)])
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
        for error in errors:
            log.error("invalid configuration, still serving the last good one: %s", error)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Load (raising InvalidConfiguration on bad input), apply, open the admin API."""
        state = self._source.load()
        path = self._state_file
        if path is None and state.settings.state_file:
            path = Path(state.settings.state_file)
        self._memory = AddressMemory(path if path is not None else default_state_file())
        await self._apply(state)
        address = self._admin_address_override or state.settings.admin_address
        self.admin = AdminServer(address, self.snapshot, ready=lambda: self._ready)
        await self.admin.start()
        self._ready = True
        log.info("admin API on http://%s/api/v1/state", self.admin.bound_address)

    async def serve(self) -> None:
        """Watch the sources and apply changes until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._source.run())
            tasks.create_task(self._reconcile())

    async def close(self) -> None:
        self._ready = False
        if self.admin is not None:
            await self.admin.close()
        for dataplane in self._dataplanes:
            await dataplane.close()

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

    async def _apply(self, state: ClusterState) -> None:
        assert self._memory is not None
        config = plan(state, self._memory.addresses)
        listener_errors: dict[str, str] = {}
        for dataplane in self._dataplanes:
            result = await dataplane.apply(config)
            listener_errors.update(result.errors)
        self.state = state
        self.config = config
        self.generation += 1
        self.applied_at = time.time()
        self.last_error = None
        self.listener_errors = listener_errors
        self._memory.remember(config)
        for key, why in listener_errors.items():
            log.error("cannot open listener %s: %s", key, why)
        log.info(
            "applied configuration %d: %d services, %d listeners",
            self.generation,
            len(config.services),
            len(config.listeners),
        )

    # -- admin state -------------------------------------------------------------

    def counters(self) -> Counters:
        """Every data plane's counters in one view (keys do not overlap between planes)."""
        if len(self._dataplanes) == 1:
            return self._dataplanes[0].counters()
        merged = Counters()
        for dataplane in self._dataplanes:
            counters = dataplane.counters()
            merged.backends.update(counters.backends)
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
                for ep in backend_set.endpoints:
                    c = counters.backends.get((set_key, join_host_port(ep.address, ep.port)))
                    endpoints.append(
                        {
                            "address": ep.address,
                            "port": ep.port,
                            "name": ep.name,
                            "node": ep.node,
                            "zone": ep.zone,
                            "ready": ep.ready,
                            "serving": ep.serving,
                            "terminating": ep.terminating,
                            "usable": ep.usable,
                            "reason": ep.reason,
                            "active": c.active if c else 0,
                            "total": c.total if c else 0,
                            "failed": c.failed if c else 0,
                        }
                    )
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
        }
