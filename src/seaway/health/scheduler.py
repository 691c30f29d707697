"""The probe scheduler: one probing task per target, never more than one probe in flight.

``HealthCheckScheduler`` owns one task per ``ProbeTarget`` (an address, a port and a
check). Each task waits a random initial jitter, then probes every ``interval``
(measured from the start of one probe to the start of the next); a probe that takes
longer than ``timeout`` is abandoned as failed, so a slow backend delays nothing and
probes never pile up. Results go to ``report`` as ``HealthEvent`` values, and, per
target, to ``on_result`` when given (worker 0 of ``seaway run --workers N`` publishes
them there for the other workers: ``seaway.health.follower``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from seaway.core.config import HealthCheck, join_host_port
from seaway.core.health import BackendRef, EventKind, HealthEvent, ProbeTarget
from seaway.health.probes import ProbeResult, probe

log = logging.getLogger(__name__)

TargetKey = tuple[str, int, HealthCheck]


@dataclass(slots=True)
class _Probing:
    """A running target: who its results are for (updated in place), and its last result."""

    refs: tuple[BackendRef, ...]
    task: asyncio.Task[None] | None = None
    last: ProbeResult | None = None
    probes: int = 0


class HealthCheckScheduler:
    """Runs the probes of the targets given to ``sync`` until ``close``.

    ``rng`` draws the initial jitters (inject a seeded one for reproducible tests).
    ``on_result(address, port, check, passed)`` hears each probe's result once,
    before its events are reported.
    """

    def __init__(
        self,
        report: Callable[[HealthEvent], None],
        *,
        rng: random.Random,
        loop: asyncio.AbstractEventLoop | None = None,
        on_result: Callable[[str, int, HealthCheck, bool], None] | None = None,
    ) -> None:
        self._report = report
        self._on_result = on_result
        self._rng = rng
        self._loop = loop
        self._running: dict[TargetKey, _Probing] = {}
        self._closed = False

    def sync(self, targets: Iterable[ProbeTarget]) -> None:
        """Probe exactly ``targets`` from now on: start new ones, stop those gone."""
        if self._closed:
            return
        loop = self._loop or asyncio.get_running_loop()
        wanted = {(t.address, t.port, t.check): t for t in targets}
        for key in [k for k in self._running if k not in wanted]:
            probing = self._running.pop(key)
            if probing.task is not None:
                probing.task.cancel()
        for key, target in wanted.items():
            existing = self._running.get(key)
            if existing is not None:
                existing.refs = target.refs
                continue
            probing = self._running[key] = _Probing(target.refs)
            probing.task = loop.create_task(self._run(key, probing))

    @property
    def target_count(self) -> int:
        return len(self._running)

    def last_result(self, address: str, port: int, check: HealthCheck) -> ProbeResult | None:
        """The last result of a target (None before its first probe ends)."""
        probing = self._running.get((address, port, check))
        return probing.last if probing is not None else None

    def probe_count(self, address: str, port: int, check: HealthCheck) -> int:
        probing = self._running.get((address, port, check))
        return probing.probes if probing is not None else 0

    async def _run(self, key: TargetKey, probing: _Probing) -> None:
        address, port, check = key
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self._rng.uniform(0, max(0.0, check.initial_jitter)))
        while True:
            started = loop.time()
            result = await probe(address, port, check)
            probing.last = result
            probing.probes += 1
            kind: EventKind = "check-passed" if result.passed else "check-failed"
            now = loop.time()
            if self._on_result is not None:
                try:
                    self._on_result(address, port, check, result.passed)
                except Exception:  # publishing must not stop the probing either
                    log.exception("probe result for %s was not published", address)
            for set_key, backend_key in probing.refs:
                try:
                    self._report(HealthEvent(set_key, backend_key, kind, now))
                except Exception:  # a failing consumer must not stop the probing
                    log.exception("health event for %s was not taken", backend_key)
            if not result.passed:
                log.debug(
                    "%s check of %s failed: %s",
                    check.protocol,
                    join_host_port(address, port),
                    result.detail,
                )
            await asyncio.sleep(max(0.0, check.interval - (loop.time() - started)))

    async def close(self) -> None:
        """Stop every probe and wait for the tasks to end."""
        self._closed = True
        tasks = [p.task for p in self._running.values() if p.task is not None]
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
