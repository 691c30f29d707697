"""Active health checks shared by the workers of ``seaway run --workers N``.

Worker 0 probes, as one seaway does, and its ``ProbePublisher`` appends each result
to the target's slot in the shared-state file (``seaway.shared_state.HealthTable``).
Every other worker runs a ``HealthFollower`` instead of probing: every
``FOLLOW_INTERVAL`` it reads the slots of the targets it would have probed, and
replays the results it has not seen yet, in order, as the ``check-passed`` /
``check-failed`` events the scheduler would have reported. Its rise/fall state
machines then move as worker 0's do.

A target the table has no room for (its probe sequence full) is probed by each
follower itself, with its own ``HealthCheckScheduler``, until a slot frees up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from seaway.core.config import HealthCheck
from seaway.core.health import EventKind, HealthEvent, ProbeTarget
from seaway.core.sharing import health_target_key, missed_results
from seaway.health.scheduler import HealthCheckScheduler
from seaway.shared_state import HealthPublisher, Published, SlotStatus

log = logging.getLogger(__name__)

# How often a follower reads the slots: a result reaches every worker within this
# much of worker 0 (probe intervals are seconds; one read per target is two words).
FOLLOW_INTERVAL = 0.05

TargetKey = tuple[str, int, HealthCheck]


def _key_of(target: ProbeTarget) -> int:
    return health_target_key(target.address, target.port, target.check)


class ProbePublisher:
    """Worker 0's side: the scheduler's ``on_result`` writes each result to the table."""

    def __init__(self, publisher: HealthPublisher, clock: Callable[[], float]) -> None:
        self._publisher = publisher
        self._clock = clock
        self._keys: dict[TargetKey, int] = {}

    def sync(self, targets: Iterable[ProbeTarget], now: float) -> None:
        """The targets probed from now on (slots of the others are given up later)."""
        self._keys = {(t.address, t.port, t.check): _key_of(t) for t in targets}
        self._publisher.retain(set(self._keys.values()), now)

    def publish(self, address: str, port: int, check: HealthCheck, passed: bool) -> None:
        """One probe result (the scheduler's ``on_result``)."""
        key = self._keys.get((address, port, check))
        if key is None:
            key = health_target_key(address, port, check)
        self._publisher.publish(key, passed, self._clock())


class PublishedResults(Protocol):
    """What a follower reads: ``seaway.shared_state.HealthReader``."""

    def read(self, key: int, since: int | None) -> Published | SlotStatus:
        """The slot of ``key`` when intact and its sequence is not ``since``."""

    def forget(self, keep: set[int]) -> None:
        """Drop what is cached about keys not in ``keep``."""


@dataclass(slots=True)
class _Followed:
    target: ProbeTarget
    applied: int | None = None  # the sequence replayed up to; None: never seen
    probing: bool = False  # the table has no room for it: probed here


class HealthFollower:
    """A follower worker's health checks: worker 0's results, replayed.

    ``sync`` gives the targets (the ``ProbeTarget`` values the app computes for
    each configuration); ``run`` polls until cancelled; ``close`` stops the
    fallback probes. ``report`` is the app's ``record_health_event``.
    """

    def __init__(
        self,
        results: PublishedResults,
        report: Callable[[HealthEvent], None],
        fallback: HealthCheckScheduler,
        *,
        interval: float = FOLLOW_INTERVAL,
    ) -> None:
        self._results = results
        self._report = report
        self._fallback = fallback
        self._interval = interval
        self._followed: dict[int, _Followed] = {}
        self._probing: frozenset[int] = frozenset()
        self._warned = False

    def sync(self, targets: Iterable[ProbeTarget]) -> None:
        """Follow exactly ``targets``; a target kept keeps its place in the sequence."""
        followed: dict[int, _Followed] = {}
        for target in targets:
            key = _key_of(target)
            earlier = self._followed.get(key)
            if earlier is None:
                followed[key] = _Followed(target)
            else:
                earlier.target = target  # its refs may have changed
                followed[key] = earlier
        self._followed = followed
        self._results.forget(set(followed))
        self._sync_fallback()

    @property
    def probed_here(self) -> tuple[ProbeTarget, ...]:
        """The targets this worker probes itself (no room for them in the table)."""
        return tuple(f.target for f in self._followed.values() if f.probing)

    def poll(self, now: float) -> int:
        """Read every followed slot once and replay what is new; the events reported."""
        reported = 0
        for key, followed in self._followed.items():
            got = self._results.read(key, followed.applied)
            if isinstance(got, Published):
                results = missed_results(followed.applied, got.sequence, got.history)
                followed.applied = got.sequence
                followed.probing = False
                for passed in results:
                    reported += self._replay(followed.target, passed, now)
            elif got == "full":
                followed.probing = True
            # "same": nothing new; "absent": not published yet, or worker 0 is being
            # restarted; "torn": read again next time. The state stays as it is.
        self._sync_fallback()
        return reported

    def _replay(self, target: ProbeTarget, passed: bool, now: float) -> int:
        kind: EventKind = "check-passed" if passed else "check-failed"
        for set_key, backend_key in target.refs:
            try:
                self._report(HealthEvent(set_key, backend_key, kind, now))
            except Exception:  # a failing consumer must not stop the following
                log.exception("health event for %s was not taken", backend_key)
        return len(target.refs)

    def _sync_fallback(self) -> None:
        probing = frozenset(k for k, f in self._followed.items() if f.probing)
        if probing == self._probing:
            return
        if probing - self._probing and not self._warned:
            self._warned = True
            log.warning(
                "shared health checks: worker 0 has no room to publish some targets; "
                "this worker probes them itself"
            )
        self._probing = probing
        self._fallback.sync(self._followed[k].target for k in probing)

    async def run(self) -> None:
        """Poll every ``interval`` until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            self.poll(loop.time())
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Stop the fallback probes."""
        await self._fallback.close()
