"""The timeline rule: the order of events that lets a rollout lose nothing (pure).

When a pod is deleted, three clocks start at once:

1. the load balancer needs *time to unhealthy* (interval x unhealthy threshold +
   timeout) to stop sending it new connections;
2. the pod's preStop hook (a sleep) keeps it serving meanwhile;
3. after terminationGracePeriodSeconds the kubelet kills it, whatever it was doing.

Nothing is lost only when 1 < 2 < 3: the load balancer has stopped sending before the
pod stops serving, and the pod has time to finish after its preStop. ``timeline_warnings``
checks that order for every Service with an active health check, against the
Deployments and Pods whose labels its selector matches.
"""

from __future__ import annotations

from collections.abc import Mapping

from seaway.core.health_checks import backend_mode, resolve_health_check
from seaway.model.cluster import ClusterState
from seaway.model.objects import Service
from seaway.model.parse import describe


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a Service selector matches pod labels (an empty selector selects nothing)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _seconds(value: float) -> str:
    return f"{value:g} s"


def timeline_warnings(state: ClusterState) -> list[str]:
    """One warning per (Service, workload) whose timeline is out of order; sorted."""
    warnings: list[str] = []
    for key in sorted(state.services):
        service = state.services[key]
        for workload_key in sorted(state.workloads):
            workload = state.workloads[workload_key]
            if workload.meta.namespace != service.meta.namespace:
                continue
            if not selects(service.selector, workload.pod_labels):
                continue
            warnings.extend(_check(state, service, workload_key))
    return warnings


def _check(state: ClusterState, service: Service, workload_key: str) -> list[str]:
    workload = state.workloads[workload_key]
    timing = workload.timing
    kind = workload_key.split(" ", 1)[0]
    where = f"{describe('Service', service.meta)} and {describe(kind, workload.meta)}"
    found: list[str] = []
    pre_stop = timing.pre_stop_seconds
    check = resolve_health_check(service, backend_mode(service), state.settings.health_check)
    if check is not None and not timing.pre_stop_unknown:
        to_unhealthy = check.time_to_unhealthy()
        if not to_unhealthy < pre_stop:
            found.append(
                f"{where}: time to unhealthy ({_seconds(check.interval)} x "
                f"{check.unhealthy_threshold} + {_seconds(check.timeout)} = "
                f"{_seconds(to_unhealthy)}) is not shorter than the preStop time "
                f"({_seconds(pre_stop)}): new connections can reach pods that stopped "
                f"serving; give the pods a preStop sleep longer than {_seconds(to_unhealthy)}"
            )
    if timing.pre_stop_unknown and check is not None:
        found.append(
            f"{where}: {timing.pre_stop_unknown}: cannot tell how long it keeps the pod "
            "serving; it must outlast the time to unhealthy "
            f"({_seconds(check.time_to_unhealthy())})"
        )
    if pre_stop > 0 and not pre_stop < timing.termination_grace_seconds:
        found.append(
            f"{where}: the preStop time ({_seconds(pre_stop)}) is not shorter than "
            f"terminationGracePeriodSeconds ({timing.termination_grace_seconds}): the pod "
            "is killed before it can finish its connections"
        )
    return found
