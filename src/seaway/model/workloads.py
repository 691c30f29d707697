"""Workloads as seaway reads them: only the timing the timeline rule needs.

Deployments (apps/v1) and Pods (v1) are read for ``seaway validate``'s timeline rule
(``seaway.core.health_timeline``): which pods a Service selects, how long their
preStop hook keeps them serving after deletion, and how long Kubernetes waits before
killing them. Every other field is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from seaway.model.objects import ObjectMeta

# PodSpec.terminationGracePeriodSeconds when absent (k8s.io/api core/v1
# DefaultTerminationGracePeriodSeconds).
DEFAULT_TERMINATION_GRACE_SECONDS = 30


def _empty_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PodTiming:
    """How a pod ends: its preStop time and its termination grace period.

    ``pre_stop_seconds`` is the longest known preStop of its containers (``exec``
    ``sleep N`` or the ``sleep`` action's seconds), 0 when none has one;
    ``pre_stop_unknown`` names a container whose preStop takes a time seaway cannot
    tell (an ``httpGet``, another command).
    """

    termination_grace_seconds: int = DEFAULT_TERMINATION_GRACE_SECONDS
    pre_stop_seconds: float = 0.0
    pre_stop_unknown: str = ""
    # readinessProbe periodSeconds x failureThreshold of the slowest container, when set.
    readiness_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """An ``apps/v1`` Deployment: its pod template's labels and timing."""

    meta: ObjectMeta
    template_labels: Mapping[str, str] = field(default_factory=_empty_map)
    timing: PodTiming = PodTiming()

    @property
    def key(self) -> str:
        return self.meta.key

    @property
    def pod_labels(self) -> Mapping[str, str]:
        return self.template_labels


@dataclass(frozen=True, slots=True)
class Pod:
    """A ``v1`` Pod: its labels and timing."""

    meta: ObjectMeta
    timing: PodTiming = PodTiming()

    @property
    def key(self) -> str:
        return self.meta.key

    @property
    def pod_labels(self) -> Mapping[str, str]:
        return self.meta.labels


Workload = Deployment | Pod
