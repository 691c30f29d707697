"""Parsers of the workload kinds (Deployment, Pod): only the fields the timeline rule reads.

Everything else in these objects is ignored, not checked: seaway is not their API
server. The fields read are checked as strictly as everywhere else.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from seaway.model.fields import FieldReader, item_mapping, item_string, join_path
from seaway.model.objects import ObjectMeta
from seaway.model.workloads import DEFAULT_TERMINATION_GRACE_SECONDS, Deployment, Pod, PodTiming

# Probe defaults (k8s.io/api core/v1 Probe): periodSeconds 10, failureThreshold 3.
PROBE_PERIOD_DEFAULT = 10
PROBE_FAILURE_THRESHOLD_DEFAULT = 3
# "sleep 15", "/bin/sleep 15s", "exec sleep 2.5": what preStop hooks that wait look like.
_SLEEP = re.compile(r"(?:exec\s+)?(?:\S*/)?sleep\s+(\d+(?:\.\d+)?)s?")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "/bin/sh", "/bin/bash", "/bin/ash", "/bin/dash"})


def sleep_seconds(command: list[str]) -> float | None:
    """The seconds an exec preStop command sleeps (``sleep N`` or ``sh -c "sleep N"``)."""
    if len(command) >= 3 and command[0] in _SHELLS and command[1] == "-c":
        try:
            command = shlex.split(command[2])
        except ValueError:
            return None
    match = _SLEEP.fullmatch(" ".join(command).strip())
    return float(match.group(1)) if match else None


def _container_timing(
    r: FieldReader, container: Mapping[str, object], path: str
) -> tuple[float, str, float | None]:
    """(preStop seconds, why unknown, readiness seconds) of one container."""
    name = r.string(container, path, "name") or path
    pre_stop = 0.0
    unknown = ""
    lifecycle = r.mapping(container, path, "lifecycle")
    hook = (
        r.mapping(lifecycle, join_path(path, "lifecycle"), "preStop")
        if lifecycle is not None
        else None
    )
    if hook is not None:
        here = join_path(path, "lifecycle.preStop")
        sleep = r.mapping(hook, here, "sleep")
        exec_action = r.mapping(hook, here, "exec")
        if sleep is not None:
            pre_stop = float(r.integer(sleep, join_path(here, "sleep"), "seconds", 0) or 0)
        elif exec_action is not None:
            items = r.list_of(exec_action, join_path(here, "exec"), "command", item_string)
            command = [text for _, text in items]
            seconds = sleep_seconds(command)
            if seconds is None:
                unknown = f"container {name}: preStop command {' '.join(command)!r}"
            else:
                pre_stop = seconds
        else:
            unknown = f"container {name}: preStop is not a sleep"
    readiness: float | None = None
    probe = r.mapping(container, path, "readinessProbe")
    if probe is not None:
        here = join_path(path, "readinessProbe")
        period = r.integer(probe, here, "periodSeconds", 1) or PROBE_PERIOD_DEFAULT
        failures = r.integer(probe, here, "failureThreshold", 1) or PROBE_FAILURE_THRESHOLD_DEFAULT
        readiness = float(period * failures)
    return pre_stop, unknown, readiness


def pod_timing(r: FieldReader, spec: Mapping[str, object], path: str) -> PodTiming:
    """The timing of a PodSpec at ``path``."""
    grace = r.integer(spec, path, "terminationGracePeriodSeconds", 0)
    pre_stop = 0.0
    unknown = ""
    readiness: float | None = None
    for item_path, container in r.list_of(spec, path, "containers", item_mapping):
        seconds, why, ready = _container_timing(r, container, item_path)
        pre_stop = max(pre_stop, seconds)
        unknown = unknown or why
        if ready is not None:
            readiness = ready if readiness is None else max(readiness, ready)
    return PodTiming(
        termination_grace_seconds=DEFAULT_TERMINATION_GRACE_SECONDS if grace is None else grace,
        pre_stop_seconds=pre_stop,
        pre_stop_unknown=unknown,
        readiness_seconds=readiness,
    )


def parse_deployment(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Deployment:
    spec = r.mapping(doc, "", "spec") or {}
    template = r.mapping(spec, "spec", "template") or {}
    template_meta = r.mapping(template, "spec.template", "metadata") or {}
    pod_spec = r.mapping(template, "spec.template", "spec") or {}
    return Deployment(
        meta=meta,
        template_labels=r.string_map(template_meta, "spec.template.metadata", "labels"),
        timing=pod_timing(r, pod_spec, "spec.template.spec"),
    )


def parse_pod(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Pod:
    spec = r.mapping(doc, "", "spec") or {}
    return Pod(meta=meta, timing=pod_timing(r, spec, "spec"))
