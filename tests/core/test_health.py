"""Health state machines, the tracker, and how plan() uses the health view (pure, fake time)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from seaway.core.config import HealthCheck
from seaway.core.health import (
    ACTIVE_TRANSITIONS,
    ActiveState,
    CheckOutcome,
    HealthEvent,
    HealthTracker,
    HealthView,
    OutlierState,
    apply_active,
    apply_outlier,
    ejection_cap,
    ejection_seconds,
)
from seaway.core.plan import plan
from seaway.model import annotations as notes
from seaway.model.cluster import ClusterState
from seaway.model.objects import (
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    ObjectMeta,
    OutlierSettings,
    SeawaySettings,
    Service,
    ServicePort,
)

CHECK = HealthCheck(protocol="tcp", healthy_threshold=2, unhealthy_threshold=3)
OUTLIER = OutlierSettings()


def run_active(outcomes: str) -> ActiveState:
    """Apply outcomes written as a string (P = pass, F = fail) to a new backend."""
    state = ActiveState()
    for letter in outcomes:
        outcome: CheckOutcome = "pass" if letter == "P" else "fail"
        state = apply_active(state, outcome, CHECK)
    return state


def test_every_state_and_outcome_has_a_transition() -> None:
    states = ("unknown", "healthy", "unhealthy")
    assert set(ACTIVE_TRANSITIONS) == {(s, o) for s in states for o in ("pass", "fail")}


@pytest.mark.parametrize(
    ("outcomes", "status", "streak"),
    [
        ("", "unknown", 0),
        ("P", "healthy", 0),  # the first pass confirms a new backend
        ("F", "unknown", 1),
        ("FF", "unknown", 2),
        ("FFF", "unhealthy", 0),  # unhealthy threshold 3
        ("PFF", "healthy", 2),
        ("PFFP", "healthy", 0),  # a pass resets the failure streak
        ("PFFPFFF", "unhealthy", 0),
        ("FFFP", "unhealthy", 1),
        ("FFFPP", "healthy", 0),  # healthy threshold 2
        ("FFFPFP", "unhealthy", 1),  # a failure resets the pass streak
        ("FFFFFFF", "unhealthy", 0),
    ],
)
def test_active_thresholds(outcomes: str, status: str, streak: int) -> None:
    assert run_active(outcomes) == ActiveState(status, streak)  # type: ignore[arg-type]


def fail(state: OutlierState, at: float, times: int = 1, may_eject: bool = True) -> OutlierState:
    for _ in range(times):
        state = apply_outlier(state, "failure", at, OUTLIER, may_eject)
    return state


def test_five_consecutive_failures_eject_for_the_base_time() -> None:
    state = fail(OutlierState(), 100.0, 4)
    assert state.ejected_until is None and state.failures == 4
    state = fail(state, 100.0)
    assert state.ejected_until == 130.0 and state.ejections == 1 and state.failures == 0


def test_a_success_resets_the_streak() -> None:
    state = fail(OutlierState(), 0.0, 4)
    state = apply_outlier(state, "success", 0.0, OUTLIER, True)
    assert fail(state, 0.0, 4).ejected_until is None


def test_ejection_time_grows_with_repeated_ejections_up_to_the_cap() -> None:
    assert [ejection_seconds(n, OUTLIER) for n in (1, 2, 3, 10, 11)] == [30, 60, 90, 300, 300]
    state = fail(OutlierState(), 0.0, 5)  # out until 30
    state = fail(state, 31.0, 5)  # back at 30, out again at 31 for 2 x 30
    assert state.ejections == 2 and state.ejected_until == 91.0


def test_ejection_count_decays_while_the_backend_behaves() -> None:
    state = fail(OutlierState(), 0.0, 5)  # ejected until 30, returned then
    state = fail(state, 30.0 + 2 * 30.0, 5)  # two whole base times later: count 1 -> 0 -> 1
    assert state.ejections == 1 and state.ejected_until == 120.0


def test_the_cap_refuses_an_ejection() -> None:
    state = fail(OutlierState(), 0.0, 5, may_eject=False)
    assert state.ejected_until is None and state.failures == 5


def test_passed_check_returns_an_ejected_backend_at_once() -> None:
    state = fail(OutlierState(), 0.0, 5)
    back = apply_outlier(state, "check-passed", 1.0, OUTLIER, True)
    assert back.ejected_until is None and back.returned_at == 1.0 and back.ejections == 1


def test_disabled_outlier_detection_never_ejects() -> None:
    off = OutlierSettings(enabled=False)
    state = OutlierState()
    for _ in range(20):
        state = apply_outlier(state, "failure", 0.0, off, True)
    assert state.ejected_until is None


@pytest.mark.parametrize(
    ("size", "percent", "cap"), [(1, 10, 1), (5, 10, 1), (19, 10, 1), (20, 10, 2), (10, 50, 5)]
)
def test_ejection_cap_is_a_percentage_but_at_least_one(size: int, percent: int, cap: int) -> None:
    assert ejection_cap(size, OutlierSettings(max_ejection_percent=percent)) == cap


# -- tracker and plan -------------------------------------------------------------------


def service(annotations: dict[str, str] | None = None) -> Service:
    return Service(
        meta=ObjectMeta(name="web", annotations=MappingProxyType(annotations or {})),
        type="LoadBalancer",
        ports=(ServicePort(port=80, name="http", target_port=8080),),
    )


def cluster(n: int, annotations: dict[str, str] | None = None, **settings: object) -> ClusterState:
    endpoints = tuple(
        Endpoint(addresses=(f"10.0.0.{i}",), conditions=EndpointConditions(ready=True))
        for i in range(1, n + 1)
    )
    slice_ = EndpointSlice(
        meta=ObjectMeta(name="web-1"),
        service_name="web",
        endpoints=endpoints,
        ports=(EndpointPort(port=8080, name="http"),),
    )
    return ClusterState(
        services=MappingProxyType({"default/web": service(annotations)}),
        slices_by_service=MappingProxyType({"default/web": (slice_,)}),
        settings=SeawaySettings(**settings),  # type: ignore[arg-type]
    )


SET = "default/web:80/TCP"
CHECKED = {notes.HEALTH_CHECK_PROTOCOL: "tcp", notes.HEALTH_CHECK_UNHEALTHY_THRESHOLD: "1"}


def test_plan_leaves_unhealthy_and_ejected_backends_out_with_the_reason() -> None:
    view = HealthView(
        MappingProxyType({(SET, "10.0.0.1:8080"): "unhealthy", (SET, "10.0.0.2:8080"): "ejected"})
    )
    config = plan(cluster(5), {}, view)
    backend_set = config.backend_sets[SET]
    assert [b.key for b in backend_set.backends] == [
        "10.0.0.3:8080",
        "10.0.0.4:8080",
        "10.0.0.5:8080",
    ]
    assert len(backend_set.candidates) == 5 and not backend_set.panic
    reasons = {e.address: (e.usable, e.reason) for e in backend_set.endpoints}
    assert reasons["10.0.0.1"] == (False, "unhealthy")
    assert reasons["10.0.0.2"] == (False, "ejected")
    assert reasons["10.0.0.3"] == (True, "")


def test_panic_uses_every_candidate_below_the_threshold() -> None:
    view = HealthView(MappingProxyType({(SET, f"10.0.0.{i}:8080"): "unhealthy" for i in (1, 2, 3)}))
    backend_set = plan(cluster(5), {}, view).backend_sets[SET]  # 2 of 5 healthy: 40% < 50%
    assert backend_set.panic and len(backend_set.backends) == 5
    assert {e.reason for e in backend_set.endpoints if e.address == "10.0.0.1"} == {
        "unhealthy (used: panic)"
    }
    two = plan(cluster(4), {}, view).backend_sets[SET]  # 1 of 4: panic too
    assert two.panic
    half = HealthView(MappingProxyType({(SET, "10.0.0.1:8080"): "unhealthy"}))
    assert not plan(cluster(2), {}, half).backend_sets[SET].panic  # 50% is not below 50%
    no_panic = plan(cluster(5, healthy_panic_threshold=0), {}, view).backend_sets[SET]
    assert not no_panic.panic and len(no_panic.backends) == 2


def test_a_health_change_changes_only_its_backend_set() -> None:
    state = cluster(3)
    other = Service(
        meta=ObjectMeta(name="api"), type="LoadBalancer", ports=(ServicePort(port=81, name="x"),)
    )
    state = ClusterState(
        services=MappingProxyType({**state.services, "default/api": other}),
        slices_by_service=state.slices_by_service,
    )
    before = plan(state, {})
    view = HealthView(MappingProxyType({(SET, "10.0.0.1:8080"): "unhealthy"}))
    after = plan(state, {}, view)
    assert before.backend_sets["default/api:81/TCP"] == after.backend_sets["default/api:81/TCP"]
    assert before.backend_sets[SET] != after.backend_sets[SET]
    assert before.listeners == after.listeners


def test_tracker_turns_events_into_a_view_and_back() -> None:
    state = cluster(3, CHECKED)
    config = plan(state, {})
    tracker = HealthTracker()
    tracker.sync(config)
    targets = tracker.probe_targets(config)
    assert [(t.address, t.port) for t in targets] == [
        ("10.0.0.1", 8080),
        ("10.0.0.2", 8080),
        ("10.0.0.3", 8080),
    ]
    assert tracker.apply(HealthEvent(SET, "10.0.0.2:8080", "check-failed", 1.0))
    assert tracker.view(1.0).verdicts == {(SET, "10.0.0.2:8080"): "unhealthy"}
    assert not tracker.apply(HealthEvent(SET, "10.0.0.2:8080", "check-failed", 2.0))
    assert not tracker.apply(HealthEvent(SET, "10.0.0.2:8080", "check-passed", 3.0))
    assert tracker.apply(HealthEvent(SET, "10.0.0.2:8080", "check-passed", 4.0))  # threshold 2
    assert tracker.view(4.0).verdicts == {}
    # Events about backends that are not candidates are ignored.
    assert not tracker.apply(HealthEvent(SET, "10.9.9.9:8080", "check-failed", 5.0))


def test_tracker_ejects_on_connect_failures_and_expires_the_ejection() -> None:
    state = cluster(3)
    tracker = HealthTracker()
    tracker.sync(plan(state, {}))
    changes = [
        tracker.apply(HealthEvent(SET, "10.0.0.1:8080", "connect-failed", 10.0)) for _ in range(5)
    ]
    assert changes == [False, False, False, False, True]
    assert tracker.view(10.0).verdicts == {(SET, "10.0.0.1:8080"): "ejected"}
    assert tracker.next_change(10.0) == 40.0
    # The cap (10% of 3, at least one) refuses a second ejection in the same set.
    for _ in range(5):
        tracker.apply(HealthEvent(SET, "10.0.0.2:8080", "connect-failed", 11.0))
    assert (SET, "10.0.0.2:8080") not in tracker.view(11.0).verdicts
    assert tracker.view(40.0).verdicts == {}  # the ejection is over
    assert tracker.next_change(40.0) is None


def test_tracker_forgets_backends_that_left() -> None:
    tracker = HealthTracker()
    tracker.sync(plan(cluster(3, CHECKED), {}))
    tracker.apply(HealthEvent(SET, "10.0.0.3:8080", "check-failed", 1.0))
    assert tracker.view(1.0).verdicts
    tracker.sync(plan(cluster(2, CHECKED), {}))
    assert tracker.view(2.0).verdicts == {}
    tracker.sync(plan(cluster(3, CHECKED), {}))  # it comes back: with a clean slate
    assert tracker.status(SET, "10.0.0.3:8080") == "unknown"


def test_probe_targets_are_shared_between_sets_with_the_same_check() -> None:
    nodes_like = {notes.HEALTH_CHECK_PROTOCOL: "http", notes.HEALTH_CHECK_PORT: "10256"}
    svc = Service(
        meta=ObjectMeta(name="web", annotations=MappingProxyType(nodes_like)),
        type="LoadBalancer",
        ports=(ServicePort(port=80, name="a", target_port=8080), ServicePort(port=81, name="b")),
    )
    slice_ = EndpointSlice(
        meta=ObjectMeta(name="web-1"),
        service_name="web",
        endpoints=(Endpoint(addresses=("10.0.0.1",)),),
        ports=(EndpointPort(port=8080, name="a"), EndpointPort(port=8081, name="b")),
    )
    state = ClusterState(
        services=MappingProxyType({"default/web": svc}),
        slices_by_service=MappingProxyType({"default/web": (slice_,)}),
    )
    targets = HealthTracker().probe_targets(plan(state, {}))
    assert len(targets) == 1
    assert targets[0].refs == (
        ("default/web:80/TCP", "10.0.0.1:8080"),
        ("default/web:81/TCP", "10.0.0.1:8081"),
    )
