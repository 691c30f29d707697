"""ServingPlane: what the two in-process data planes (L4 proxy, L7 proxy) share.

The wiring of their runtime (health reports, access log), serialised ``apply``, the
listeners that could not be opened, and the live counters. Each plane adds how it
opens listeners and moves from one configuration to the next (``_apply``).
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

from seaway.accesslog import AccessLog
from seaway.core.config import BackendSet, DesiredConfig
from seaway.core.health import HealthEvent
from seaway.core.live_set import LiveBackendSet
from seaway.core.sharing import SharedState
from seaway.dataplane.base import ApplyResult, Counters
from seaway.dataplane.runtime import DataPlaneRuntime

R = TypeVar("R", bound=DataPlaneRuntime)


class ServingPlane(ABC, Generic[R]):
    """A data plane serving listeners in this process, with a runtime of type ``R``."""

    def __init__(
        self,
        *,
        rng: random.Random,
        loop: asyncio.AbstractEventLoop | None = None,
        on_health_event: Callable[[HealthEvent], None] | None = None,
        access_log: AccessLog | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self._rng = rng
        # State shared with the other workers of `seaway run --workers N` (else None).
        self._shared = shared
        self._loop = loop
        self._on_health_event = on_health_event
        self._access_log = access_log
        self._runtime: R | None = None
        self._applied = DesiredConfig()
        # Listeners of the applied configuration that could not be opened, and why;
        # retried on every apply.
        self._failed: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._empty_counters = Counters()

    def _live_set(self, spec: BackendSet) -> LiveBackendSet:
        """A backend set as this plane serves it (sharing counts and affinity with the
        other workers, when there are any)."""
        return LiveBackendSet(spec, rng=self._rng, shared=self._shared)

    @abstractmethod
    def _new_runtime(self, loop: asyncio.AbstractEventLoop) -> R:
        """The plane's runtime, built on first use."""

    def _ensure_runtime(self) -> R:
        if self._runtime is None:
            loop = self._loop if self._loop is not None else asyncio.get_running_loop()
            runtime = self._new_runtime(loop)
            # Traffic outcomes feed outlier detection; finished work goes to the access log.
            runtime.on_health_event = self._on_health_event
            runtime.access_log = self._access_log
            self._runtime = runtime
        return self._runtime

    async def apply(self, config: DesiredConfig) -> ApplyResult:
        """Move to ``config``; listeners that cannot be bound are reported and retried."""
        async with self._lock:
            if self._closed:
                raise RuntimeError(f"{type(self).__name__} is closed")
            return await self._apply(config)

    @abstractmethod
    async def _apply(self, config: DesiredConfig) -> ApplyResult:
        """Move from ``self._applied`` to ``config`` (called under the lock)."""

    def counters(self) -> Counters:
        """Live counters (read by the admin API; do not mutate)."""
        if self._runtime is None:
            return self._empty_counters
        return self._runtime.counters

    def errors(self) -> dict[str, str]:
        """Listeners of the applied configuration that are not open, and why."""
        return dict(self._failed)
