"""[kernel-rolling-update] A rolling update under steady load through the kernel path.

seaway runs with ``--dataplane nftables`` (NAT, the nodes at their nodePort as
backends): the kernel forwards every packet; seaway only programs the selection map.
The client sends a steady stream of requests (a new connection each) to the Service's
address while the deployment is rolled with the timeline right (preStop longer than
the propagation to the nodes, shorter than the grace period; see rolling-update).

The load balancer's backends are the nodes, which do not change: what changes is
which pods the nodes' kube-proxy rules send to. Promise: zero failed requests, every
one of them DNATed by the kernel (the NAT chain's counter).
"""

from __future__ import annotations

import time
from pathlib import Path

from seaway.lab.kernel_rules import dnat_flows, listed_table, wait_for_backends
from seaway.lab.lab import Lab
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.scenarios.rolling_update import (
    RATE,
    report,
    right_timeline,
    roll_under_load,
    timeline,
)
from seaway.lab.spec import LabSpec

NAME = "kernel-rolling-update"


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    service = spec.cluster_service()
    name = service.deployment
    right = right_timeline(spec.deployment(name), spec.propagation_seconds)
    target = (service.load_balancer_ip, service.port)
    async with Lab(
        spec.with_deployment(right), state_dir=state_dir, say=say, dataplane="nftables"
    ) as lab:
        await wait_for_backends(service, {n.address for n in spec.nodes})
        before = dnat_flows(listed_table(), service)
        say("")
        say(
            f"rolling update through the kernel path ({target[0]}:{target[1]}, NAT, nodes "
            f"as backends), {RATE:g} requests/s, preStop {right.pre_stop_sleep_seconds:g} s "
            f"(longer than the propagation {spec.propagation_seconds:g} s, shorter than the "
            f"grace period {right.termination_grace_period_seconds:g} s)"
        )
        started = time.monotonic()
        load, replaced = await roll_under_load(lab, name, None, [target])
        seconds = time.monotonic() - started
        flows = dnat_flows(listed_table(), service) - before
        report(load, say, f"{target[0]}:{target[1]}")
        say(
            f"  the kernel DNATed {flows} new flows for {service.name} during the update "
            f"({seconds:.1f} s); seaway saw none of their packets"
        )
        if replaced:
            timeline(replaced[0], spec.propagation_seconds, say)
        result.numbers.update(
            requests=load.total,
            failed=len(load.failures()),
            dnat_flows=flows,
            replaced=len(replaced),
            served_by=dict(load.by_backend()),
        )
        result.check(
            f"every pod was replaced ({len(replaced)})",
            len(replaced) == spec.deployment(name).replicas,
            say,
        )
        result.check(
            "zero failed requests through the kernel path",
            load.total > 0 and not load.failures(),
            say,
        )
        result.check("every request was a flow the kernel DNATed", flows >= load.total, say)
    return result
