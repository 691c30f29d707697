"""Backend health as state machines: active checks and outlier detection (pure).

Health results arrive as ``HealthEvent`` values (from the probers, the L4 proxy, and
later the L7 proxy) and go through one function, ``HealthTracker.apply``. Each state
machine is a transition table with one apply function:

- active checks (``ACTIVE_TRANSITIONS``): ``healthy_threshold`` passes in a row make a
  backend healthy, ``unhealthy_threshold`` failures in a row make it unhealthy;
- outlier detection (``apply_outlier``): ``consecutive_failures`` failures in a row
  (connect failures at L4, gateway errors at L7) eject a backend for
  ``base_ejection_seconds`` times the number of its ejections (at most
  ``max_ejection_seconds``), unless ``max_ejection_percent`` of its set (at least one
  backend) is ejected already; a passed active check returns it at once.

``HealthTracker.view`` turns the state into the ``HealthView`` that ``plan`` reads.
Nothing here reads a clock: times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from seaway.core.config import Backend, BackendSet, DesiredConfig, HealthCheck
from seaway.model.objects import OutlierSettings

ActiveStatus = Literal["unknown", "healthy", "unhealthy"]
CheckOutcome = Literal["pass", "fail"]
EventKind = Literal[
    "check-passed",  # an active probe passed
    "check-failed",  # an active probe failed or timed out
    "connect-succeeded",  # L4: the proxy connected to the backend
    "connect-failed",  # L4: refused, unreachable or timed out
    "request-succeeded",  # L7: a response that is not a gateway error
    "gateway-error",  # L7: 502/503/504 from the backend, or no response
]
# The verdict ``plan`` shows for a backend health took out of its set.
Verdict = Literal["unhealthy", "ejected"]
REASON_UNHEALTHY: Verdict = "unhealthy"
REASON_EJECTED: Verdict = "ejected"

BackendRef = tuple[str, str]  # (BackendSet.key, Backend.key)


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """One health result about one backend of one set, at time ``at`` (seconds)."""

    set_key: str
    backend_key: str
    kind: EventKind
    at: float


# -- active checks: a transition table --------------------------------------------------

Threshold = Literal["healthy", "unhealthy"]


@dataclass(frozen=True, slots=True)
class Transition:
    """What one check outcome does in one state.

    ``threshold`` None: the outcome agrees with the state (the streak of opposite
    outcomes resets). Otherwise the outcome counts towards that threshold, and on
    reaching it the state becomes ``target``.
    """

    threshold: Threshold | None
    target: ActiveStatus


ACTIVE_TRANSITIONS: Mapping[tuple[ActiveStatus, CheckOutcome], Transition] = MappingProxyType(
    {
        # A new backend is used (Kubernetes readiness admitted it); its first passed
        # check confirms it, failures count as for a healthy one.
        ("unknown", "pass"): Transition(None, "healthy"),
        ("unknown", "fail"): Transition("unhealthy", "unhealthy"),
        ("healthy", "pass"): Transition(None, "healthy"),
        ("healthy", "fail"): Transition("unhealthy", "unhealthy"),
        ("unhealthy", "pass"): Transition("healthy", "healthy"),
        ("unhealthy", "fail"): Transition(None, "unhealthy"),
    }
)


@dataclass(frozen=True, slots=True)
class ActiveState:
    status: ActiveStatus = "unknown"
    streak: int = 0  # outcomes in a row against ``status``


def apply_active(state: ActiveState, outcome: CheckOutcome, check: HealthCheck) -> ActiveState:
    """The state after one check outcome (``ACTIVE_TRANSITIONS``)."""
    step = ACTIVE_TRANSITIONS[(state.status, outcome)]
    if step.threshold is None:
        return ActiveState(step.target, 0)
    needed = check.healthy_threshold if step.threshold == "healthy" else check.unhealthy_threshold
    streak = state.streak + 1
    if streak >= needed:
        return ActiveState(step.target, 0)
    return ActiveState(state.status, streak)


# -- outlier detection ------------------------------------------------------------------

OutlierOutcome = Literal["success", "failure", "check-passed"]


@dataclass(frozen=True, slots=True)
class OutlierState:
    failures: int = 0  # failures in a row
    ejections: int = 0  # times ejected (the ejection time multiplier)
    ejected_until: float | None = None
    returned_at: float | None = None  # when the last ejection ended


def ejection_seconds(ejections: int, settings: OutlierSettings) -> float:
    """Envoy: base_ejection_time x number of ejections, capped by max_ejection_time."""
    return min(settings.base_ejection_seconds * ejections, settings.max_ejection_seconds)


def ejection_cap(set_size: int, settings: OutlierSettings) -> int:
    """How many backends of a set may be ejected at once: the percentage, at least one."""
    return max(1, math.floor(set_size * settings.max_ejection_percent / 100))


def apply_outlier(
    state: OutlierState,
    outcome: OutlierOutcome,
    now: float,
    settings: OutlierSettings,
    may_eject: bool,
) -> OutlierState:
    """The state after one result; ``may_eject`` says whether the set's cap allows one more.

    - ``success``: the failure streak resets (an ejected backend stays ejected: only
      time or an active check returns it, as in Envoy);
    - ``failure``: the streak grows; at ``consecutive_failures`` the backend is
      ejected when ``may_eject``, for ``ejection_seconds`` of its ejection count. The
      count first decays by one per whole base ejection time spent back in the set,
      so a backend that behaved for long starts again from a short ejection;
    - ``check-passed``: a passed active check returns an ejected backend now.
    """
    if state.ejected_until is not None and now >= state.ejected_until:
        state = replace(state, ejected_until=None, returned_at=state.ejected_until, failures=0)
    if outcome == "check-passed":
        if state.ejected_until is None:
            return state
        return replace(state, ejected_until=None, returned_at=now, failures=0)
    if outcome == "success":
        return state if state.failures == 0 else replace(state, failures=0)
    if state.ejected_until is not None:
        return state  # already out; failures of connections made before do not count
    failures = state.failures + 1
    if failures < settings.consecutive_failures or not settings.enabled or not may_eject:
        return replace(state, failures=failures)
    ejections = state.ejections
    if state.returned_at is not None and settings.base_ejection_seconds > 0:
        decay = int((now - state.returned_at) // settings.base_ejection_seconds)
        ejections = max(0, ejections - decay)
    ejections += 1
    return OutlierState(
        failures=0,
        ejections=ejections,
        ejected_until=now + ejection_seconds(ejections, settings),
        returned_at=state.returned_at,
    )


# -- the tracker ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthView:
    """What ``plan`` needs: the backends health takes out of their set, and why."""

    verdicts: Mapping[BackendRef, Verdict] = field(default_factory=lambda: MappingProxyType({}))

    def verdict(self, set_key: str, backend_key: str) -> Verdict | None:
        return self.verdicts.get((set_key, backend_key))


NO_HEALTH = HealthView()


@dataclass(slots=True)
class _Backend:
    active: ActiveState = ActiveState()
    outlier: OutlierState = OutlierState()


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One backend to probe: where, how, and the (set, backend) pairs its result is for.

    Backends of several sets that share an address and a check are probed once.
    """

    address: str
    port: int
    check: HealthCheck
    refs: tuple[BackendRef, ...]


_SUCCESSES: frozenset[EventKind] = frozenset({"connect-succeeded", "request-succeeded"})
_KIND_TO_OUTLIER: Mapping[EventKind, OutlierOutcome] = MappingProxyType(
    {
        "check-passed": "check-passed",
        "connect-succeeded": "success",
        "connect-failed": "failure",
        "request-succeeded": "success",
        "gateway-error": "failure",
    }
)


class HealthTracker:
    """The health state of every backend of every set of the applied configuration.

    Owned by the ``Seaway`` instance. ``sync`` follows each new configuration (state
    of backends that left is forgotten); ``apply`` takes one event and says whether
    the ``view`` changed, so the caller re-plans only then.
    """

    def __init__(self) -> None:
        self._backends: dict[BackendRef, _Backend] = {}
        self._checks: dict[str, HealthCheck | None] = {}
        self._members: dict[str, frozenset[str]] = {}
        self._outlier = OutlierSettings()
        self._view = NO_HEALTH

    def sync(self, config: DesiredConfig) -> None:
        """Follow ``config``: track each set's candidates, forget backends that are gone."""
        self._outlier = config.settings.outlier_detection
        members: dict[str, frozenset[str]] = {}
        checks: dict[str, HealthCheck | None] = {}
        for key, backend_set in config.backend_sets.items():
            members[key] = frozenset(b.key for b in _candidates(backend_set))
            checks[key] = backend_set.health_check
        for ref in [r for r in self._backends if r[1] not in members.get(r[0], frozenset())]:
            del self._backends[ref]
        for ref, entry in list(self._backends.items()):
            if self._checks.get(ref[0]) != checks.get(ref[0]):
                entry.active = ActiveState()  # a new check starts from scratch
        self._members = members
        self._checks = checks

    def apply(self, event: HealthEvent) -> bool:
        """Take one event; True when the view changed (a backend left or rejoined)."""
        ref = (event.set_key, event.backend_key)
        entry = self._backends.get(ref)
        if (
            entry is not None
            and event.kind in _SUCCESSES
            and entry.outlier.failures == 0
            and entry.outlier.ejected_until is None
        ):
            # The usual event (one per connection or request): a success with no streak
            # to reset and no ejection to end changes nothing.
            return False
        if event.backend_key not in self._members.get(event.set_key, frozenset()):
            return False  # about a backend no longer in its set: nothing to decide
        if entry is None:
            entry = self._backends[ref] = _Backend()
        before = _verdict(entry, event.at)
        if event.kind in ("check-passed", "check-failed"):
            check = self._checks.get(event.set_key)
            if check is not None:
                outcome: CheckOutcome = "pass" if event.kind == "check-passed" else "fail"
                entry.active = apply_active(entry.active, outcome, check)
        outlier_outcome = _KIND_TO_OUTLIER.get(event.kind)
        if outlier_outcome is not None:
            may_eject = True
            if (
                outlier_outcome == "failure"
                and entry.outlier.failures + 1 >= self._outlier.consecutive_failures
            ):  # counted only when it matters: success events come once per connection
                may_eject = self._ejected_count(event.set_key, event.at) < ejection_cap(
                    len(self._members.get(event.set_key, ())), self._outlier
                )
            entry.outlier = apply_outlier(
                entry.outlier, outlier_outcome, event.at, self._outlier, may_eject
            )
        return _verdict(entry, event.at) != before

    def _ejected_count(self, set_key: str, now: float) -> int:
        return sum(
            1
            for (key, _), entry in self._backends.items()
            if key == set_key and _ejected(entry.outlier, now)
        )

    def view(self, now: float) -> HealthView:
        """The backends taken out of their sets at ``now``."""
        verdicts: dict[BackendRef, Verdict] = {}
        for ref in sorted(self._backends):
            verdict = _verdict(self._backends[ref], now)
            if verdict is not None:
                verdicts[ref] = verdict
        if verdicts != self._view.verdicts:
            self._view = HealthView(MappingProxyType(verdicts))
        return self._view

    def next_change(self, now: float) -> float | None:
        """When an ejection ends next (the caller re-plans then), or None."""
        ends = [
            entry.outlier.ejected_until
            for entry in self._backends.values()
            if entry.outlier.ejected_until is not None and entry.outlier.ejected_until > now
        ]
        return min(ends) if ends else None

    def status(self, set_key: str, backend_key: str) -> ActiveStatus:
        """The active check status of one backend ("unknown" when never checked)."""
        entry = self._backends.get((set_key, backend_key))
        return entry.active.status if entry is not None else "unknown"

    def probe_targets(self, config: DesiredConfig) -> tuple[ProbeTarget, ...]:
        """What to probe for ``config``: every candidate of every checked set, de-duplicated."""
        grouped: dict[tuple[str, int, HealthCheck], list[BackendRef]] = {}
        for key, backend_set in config.backend_sets.items():
            check = backend_set.health_check
            if check is None:
                continue
            for backend in _candidates(backend_set):
                port = check.port if check.port is not None else backend.port
                grouped.setdefault((backend.address, port, check), []).append((key, backend.key))
        return tuple(
            ProbeTarget(address, port, check, tuple(sorted(refs)))
            for (address, port, check), refs in sorted(
                grouped.items(), key=lambda item: (item[0][0], item[0][1], repr(item[0][2]))
            )
        )


def _candidates(backend_set: BackendSet) -> tuple[Backend, ...]:
    return backend_set.candidates or backend_set.backends


def _ejected(outlier: OutlierState, now: float) -> bool:
    return outlier.ejected_until is not None and now < outlier.ejected_until


def _verdict(entry: _Backend, now: float) -> Verdict | None:
    if entry.active.status == "unhealthy":
        return REASON_UNHEALTHY
    if _ejected(entry.outlier, now):
        return REASON_EJECTED
    return None
