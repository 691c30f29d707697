"""[rolling-update] A rolling update under steady load: the pod lifecycle timeline decides.

The client sends a steady stream of requests (a new connection each) to every node's
nodePort (the kernel path, as a passthrough load balancer delivers them) and to the
Service's address on seaway. The deployment is rolled twice:

1. replacing pods that have no preStop hook (the timeline wrong): a pod gets SIGTERM
   the moment it is deleted and stops listening, while the nodes' rules still send
   it new connections until the change reaches them (``propagationSeconds``): those
   requests are refused. The failures are counted and tied to the pod that refused.
2. replacing pods whose preStop sleep outlasts the propagation, within the grace
   period (the timeline right): the pod keeps serving until every node stopped
   sending to it, then gets SIGTERM. Zero failed requests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from seaway.lab import topology
from seaway.lab.lab import Lab
from seaway.lab.load import LoadResult, RequestRecord, SteadyLoad
from seaway.lab.pods import Pod
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import DeploymentSpec, LabSpec, ServiceSpec

NAME = "rolling-update"
RATE = 40.0  # requests per second
# Each request's time limit. Generous on purpose: a request that times out on a busy
# two-core CI machine says nothing about the timeline; a refused one does.
REQUEST_SECONDS = 5.0
# Margins of the right timeline: preStop outlasts the propagation by this much, and the
# grace period outlasts preStop by this much (time for the process to exit on SIGTERM).
PRE_STOP_MARGIN_SECONDS = 2.0
GRACE_MARGIN_SECONDS = 5.0


def right_timeline(template: DeploymentSpec, propagation: float) -> DeploymentSpec:
    """``template`` with preStop longer than the propagation and shorter than the grace."""
    pre_stop = max(template.pre_stop_sleep_seconds, propagation + PRE_STOP_MARGIN_SECONDS)
    grace = max(template.termination_grace_period_seconds, pre_stop + GRACE_MARGIN_SECONDS)
    return replace(
        template, pre_stop_sleep_seconds=pre_stop, termination_grace_period_seconds=grace
    )


def _event_time(pod: Pod, text: str) -> float | None:
    return next((at for at, what in pod.events if what.startswith(text)), None)


def explain(
    failures: list[RequestRecord], pods: list[Pod], propagation: float
) -> tuple[dict[str, int], int]:
    """Failures per replaced pod (failed while it was gone but still in the rules), unexplained."""
    per_pod: dict[str, int] = {}
    unexplained = 0
    for failure in failures:
        owner = None
        for pod in pods:
            sigterm = _event_time(pod, "SIGTERM")
            if pod.deleted_at is None or sigterm is None:
                continue
            if sigterm - 0.05 <= failure.at <= pod.deleted_at + propagation + 0.5:
                owner = pod.name
                break
        if owner is None:
            unexplained += 1
        else:
            per_pod[owner] = per_pod.get(owner, 0) + 1
    return per_pod, unexplained


def all_targets(spec: LabSpec, service: ServiceSpec) -> list[tuple[str, int]]:
    """Every node's nodePort, and the Service's address on the load balancer."""
    targets = [(n.address, service.node_port) for n in spec.nodes]
    targets.append((service.load_balancer_ip, service.port))
    return targets


async def roll_under_load(
    lab: Lab,
    deployment: str,
    template: DeploymentSpec | None,
    targets: list[tuple[str, int]],
) -> tuple[LoadResult, list[Pod]]:
    """Roll ``deployment`` (to ``template``, if given) while ``RATE`` requests/s go to
    ``targets``; the load and the pods that were replaced."""
    old = [p for p in lab.pods() if p.deployment == deployment and not p.terminating]
    client = lab.threads[topology.CLIENT]
    async with SteadyLoad(client, targets, RATE, request_seconds=REQUEST_SECONDS) as load:
        await asyncio.sleep(0.5)
        await lab.deployments.rollout(deployment, template)
        # Polls the pods' state, which their delete tasks own.
        while not all(p.gone for p in old):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await lab.settle()
        await asyncio.sleep(0.5)
    return load.result, old


def report(result: LoadResult, say: Say, lb_target: str) -> None:
    """The load's totals, split between the nodePorts and the load balancer, per pod."""
    errors = result.errors()
    say(
        f"  {result.total} requests, {len(result.failures())} failed"
        + (": " + ", ".join(f"{n} {e}" for e, n in errors.items()) if errors else "")
    )
    lb_failed = sum(1 for r in result.failures() if r.target == lb_target)
    lb_total = sum(1 for r in result.records if r.target == lb_target)
    if lb_total < result.total:
        say(
            f"    of which through the nodePorts: {result.total - lb_total} requests, "
            f"{len(result.failures()) - lb_failed} failed; through seaway ({lb_target}): "
            f"{lb_total} requests, {lb_failed} failed"
        )
    served = result.by_backend()
    say("  served by: " + ", ".join(f"{pod} {n}" for pod, n in sorted(served.items())))


def timeline(pod: Pod, propagation: float, say: Say) -> None:
    """``pod``'s termination, from its deletion, next to the propagation and grace."""
    if pod.deleted_at is None:
        return
    t0 = pod.deleted_at
    marks = [(0.0, "deleted: terminating, EndpointSlice ready=false")]
    marks.append((propagation, "nodes' rules no longer send to it (propagation)"))
    for at, what in pod.events:
        if at > t0 and not what.startswith("deleted"):
            marks.append((at - t0, what))
    grace = pod.template.termination_grace_period_seconds
    marks.append((grace, "end of terminationGracePeriodSeconds (SIGKILL if still running)"))
    say(f"  timeline of {pod.name}:")
    for offset, what in sorted(marks):
        say(f"    +{offset:5.2f} s  {what}")


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    service = spec.cluster_service()
    name = service.deployment
    right = right_timeline(spec.deployment(name), spec.propagation_seconds)
    wrong = replace(right, pre_stop_sleep_seconds=0.0, delay_shutdown_seconds=0.0)
    lb_target = f"{service.load_balancer_ip}:{service.port}"
    async with Lab(spec.with_deployment(wrong), state_dir=state_dir, say=say) as lab:
        say("")
        say(
            f"1. rolling update replacing pods WITHOUT preStop (the timeline wrong), "
            f"{RATE:g} requests/s, propagation {spec.propagation_seconds:g} s"
        )
        started = time.monotonic()
        load, replaced = await roll_under_load(lab, name, right, all_targets(spec, service))
        report(load, say, lb_target)
        per_pod, unexplained = explain(load.failures(), replaced, spec.propagation_seconds)
        for pod_name, count in sorted(per_pod.items()):
            say(
                f"  {count} failed because of {pod_name}: with no preStop it got SIGTERM the "
                f"moment it was deleted and stopped listening (refused), then its address "
                f"went away (timed out), while the nodes' rules still sent it new "
                f"connections for up to {spec.propagation_seconds:g} s"
            )
        if replaced:
            timeline(replaced[0], spec.propagation_seconds, say)
        result.numbers["wrong"] = {
            "requests": load.total,
            "failed": len(load.failures()),
            "per_pod": per_pod,
            "unexplained": unexplained,
            "seconds": round(time.monotonic() - started, 1),
        }
        result.check(
            "without preStop, requests fail during the update", len(load.failures()) > 0, say
        )
        result.check(
            "every failure is explained by a pod that was already stopping", unexplained == 0, say
        )

        say("")
        say(
            f"2. rolling update replacing pods WITH preStop {right.pre_stop_sleep_seconds:g} s "
            f"(longer than the propagation {spec.propagation_seconds:g} s, shorter than the "
            f"grace period {right.termination_grace_period_seconds:g} s)"
        )
        load, replaced = await roll_under_load(lab, name, None, all_targets(spec, service))
        report(load, say, lb_target)
        if replaced:
            timeline(replaced[0], spec.propagation_seconds, say)
        result.numbers["right"] = {
            "requests": load.total,
            "failed": len(load.failures()),
            # What went wrong, if anything, so that a failure can be read from the result.
            "errors": [f"{r.target}: {r.error}" for r in load.failures()[:5]],
        }
        result.check(
            "with the timeline right: zero failed requests",
            load.total > 0 and not load.failures(),
            say,
        )
    return result
