"""Parsing of the health and lifecycle settings (SeawayConfig) and annotations (Service)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from seaway.core.health_checks import parse_count, parse_port, parse_seconds, parse_statuses
from seaway.model import annotations as notes
from seaway.model.fields import FieldReader
from seaway.model.objects import HealthCheckSettings, ObjectMeta, OutlierSettings

HEALTH_SETTINGS_FIELDS = frozenset(
    {
        "healthCheck",
        "outlierDetection",
        "healthyPanicThreshold",
        "drainTimeoutSeconds",
        "shutdownDelaySeconds",
    }
)
_HEALTH_CHECK_FIELDS = frozenset(
    {
        "pods",
        "nodes",
        "protocol",
        "path",
        "expectedStatuses",
        "intervalSeconds",
        "timeoutSeconds",
        "healthyThreshold",
        "unhealthyThreshold",
        "initialJitterSeconds",
    }
)
_OUTLIER_FIELDS = frozenset(
    {
        "enabled",
        "consecutiveFailures",
        "baseEjectionSeconds",
        "maxEjectionSeconds",
        "maxEjectionPercent",
    }
)


def non_negative_number(
    r: FieldReader, m: Mapping[str, object], path: str, key: str
) -> float | None:
    """A finite number >= 0 (0 has a meaning: "none" or "unlimited")."""
    value = m.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        r.error(f"{path}.{key}", f"expected a finite number >= 0, got {value!r}")
        return None
    if value < 0:
        r.error(f"{path}.{key}", f"must be >= 0, got {value}")
        return None
    return float(value)


def parse_health_check_settings(r: FieldReader, spec: Mapping[str, object]) -> HealthCheckSettings:
    """``spec.healthCheck``; every absent field keeps its documented default."""
    d = HealthCheckSettings()
    m = r.section(spec, "spec", "healthCheck", _HEALTH_CHECK_FIELDS)
    if m is None:
        return d
    here = "spec.healthCheck"
    pods = r.boolean(m, here, "pods")
    nodes = r.boolean(m, here, "nodes")
    statuses = r.string(m, here, "expectedStatuses")
    if statuses is not None and parse_statuses(statuses) is None:
        r.error(f"{here}.expectedStatuses", f"{statuses!r} is not like 200, 200-399 or 200,204")
        statuses = None
    path = r.string(m, here, "path")
    if path is not None and not path.startswith("/"):
        r.error(f"{here}.path", f"must start with '/', got {path!r}")
        path = None
    interval = r.positive_number(m, here, "intervalSeconds") or d.interval_seconds
    timeout = r.positive_number(m, here, "timeoutSeconds") or d.timeout_seconds
    return HealthCheckSettings(
        pods=d.pods if pods is None else pods,
        nodes=d.nodes if nodes is None else nodes,
        protocol=r.choice(m, here, "protocol", ("http", "tcp"), d.protocol),
        path=path or d.path,
        expected_statuses=statuses or d.expected_statuses,
        interval_seconds=interval,
        timeout_seconds=timeout,
        healthy_threshold=r.integer(m, here, "healthyThreshold", 1) or d.healthy_threshold,
        unhealthy_threshold=r.integer(m, here, "unhealthyThreshold", 1) or d.unhealthy_threshold,
        initial_jitter_seconds=non_negative_number(r, m, here, "initialJitterSeconds"),
    )


def parse_outlier_settings(r: FieldReader, spec: Mapping[str, object]) -> OutlierSettings:
    """``spec.outlierDetection``; every absent field keeps Envoy's default."""
    d = OutlierSettings()
    m = r.section(spec, "spec", "outlierDetection", _OUTLIER_FIELDS)
    if m is None:
        return d
    here = "spec.outlierDetection"
    enabled = r.boolean(m, here, "enabled")
    return OutlierSettings(
        enabled=d.enabled if enabled is None else enabled,
        consecutive_failures=r.integer(m, here, "consecutiveFailures", 1) or d.consecutive_failures,
        base_ejection_seconds=r.positive_number(m, here, "baseEjectionSeconds")
        or d.base_ejection_seconds,
        max_ejection_seconds=r.positive_number(m, here, "maxEjectionSeconds")
        or d.max_ejection_seconds,
        max_ejection_percent=_percent(r, m, here, "maxEjectionPercent", d.max_ejection_percent),
    )


def _percent(r: FieldReader, m: Mapping[str, object], path: str, key: str, default: int) -> int:
    value = r.integer(m, path, key, 0, 100)
    return default if value is None else value


def parse_panic_threshold(r: FieldReader, spec: Mapping[str, object], default: int) -> int:
    return _percent(r, spec, "spec", "healthyPanicThreshold", default)


def check_health_annotations(r: FieldReader, meta: ObjectMeta) -> None:
    """Report ``seaway.io/backends`` and ``seaway.io/health-check-*`` values that do not read."""
    for key, value in meta.annotations.items():
        path = f"metadata.annotations[{key}]"
        if key == notes.BACKENDS and value not in notes.BACKENDS_VALUES:
            r.error(path, f"must be one of nodes, pods, got {value!r}")
        elif key == notes.HEALTH_CHECK_PROTOCOL and value not in notes.HEALTH_CHECK_PROTOCOL_VALUES:
            r.error(path, f"must be one of http, none, tcp, got {value!r}")
        elif key == notes.HEALTH_CHECK_PATH and not value.startswith("/"):
            r.error(path, f"must start with '/', got {value!r}")
        elif key == notes.HEALTH_CHECK_PORT and parse_port(value) is None:
            r.error(path, f"must be a port number (1-65535), got {value!r}")
        elif key == notes.HEALTH_CHECK_EXPECTED_STATUSES and parse_statuses(value) is None:
            r.error(path, f"must be like 200, 200-399 or 200,204 (100-599), got {value!r}")
        elif key in notes.HEALTH_CHECK_SECONDS and parse_seconds(value) is None:
            r.error(path, f"must be a number of seconds > 0, got {value!r}")
        elif key in notes.HEALTH_CHECK_COUNTS and parse_count(value) is None:
            r.error(path, f"must be an integer >= 1, got {value!r}")
