"""[node-drain] A node drained and removed under load, as the cluster autoscaler does it.

Steady load goes through seaway (the Service's load-balancer address, nodes as
backends, policy Cluster). The node with the most pods is then

1. tainted ``ToBeDeletedByClusterAutoscaler`` (and cordoned): seaway stops opening
   new connections through it (the cloud service controller's rule, KEP-3458);
2. drained: its pods are evicted with their full lifecycle, replacements start on
   the other nodes;
3. removed: its Node object is deleted and the machine goes away.

Promise: zero failed requests, and no new connection enters through the node once
seaway read the taint.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from seaway.lab import topology
from seaway.lab.lab import Lab
from seaway.lab.load import SteadyLoad
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec

NAME = "node-drain"
RATE = 40.0
# seaway's file source polls every 0.2 s and applies within a second.
SEAWAY_PICKUP_SECONDS = 1.0


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    service = spec.cluster_service()
    async with Lab(spec, state_dir=state_dir, say=say) as lab:
        counts: dict[str, int] = {}
        for pod in lab.pods():
            counts[pod.node.name] = counts.get(pod.node.name, 0) + 1
        if len([n for n in spec.nodes if n.pods]) < 2:
            result.notes.append("needs two nodes that take pods")
            result.check("the lab has two nodes that take pods", False, say)
            return result
        victim = max(sorted(counts), key=lambda n: counts[n])
        node = spec.node(victim)
        entry = {node.address, node.pod_gateway}
        target = (service.load_balancer_ip, service.port)
        say("")
        say(
            f"load: {RATE:g} requests/s to {target[0]}:{target[1]} (seaway, nodes as "
            f"backends); draining {victim} ({counts[victim]} pods)"
        )
        client = lab.threads[topology.CLIENT]
        async with SteadyLoad(client, [target], RATE, path="/clientip") as load:
            await asyncio.sleep(1.0)
            tainted_at = time.monotonic()
            await lab.taint_node(victim)
            await asyncio.sleep(SEAWAY_PICKUP_SECONDS + 0.5)
            await lab.drain_node(victim)
            await lab.settle()
            await lab.remove_node(victim)
            await asyncio.sleep(1.5)
        records = load.result.records
        failures = load.result.failures()
        say(
            f"  {len(records)} requests, {len(failures)} failed"
            + (
                ": " + ", ".join(f"{n} {e}" for e, n in load.result.errors().items())
                if failures
                else ""
            )
        )
        through_victim = [
            r
            for r in records
            if r.ok
            and r.at > tainted_at + SEAWAY_PICKUP_SECONDS
            and r.body.rsplit(":", 1)[0] in entry
        ]
        before = sum(
            1 for r in records if r.ok and r.at < tainted_at and r.body.rsplit(":", 1)[0] in entry
        )
        say(
            f"  entered through {victim}: {before} requests before the taint, "
            f"{len(through_victim)} after seaway read it"
        )
        served = load.result.by_backend()
        say("  served by: " + ", ".join(f"{pod} {n}" for pod, n in sorted(served.items())))
        result.numbers.update(
            requests=len(records),
            failed=len(failures),
            through_drained_node_after_taint=len(through_victim),
        )
        result.check(
            f"after the taint, no new connection through {victim}", not through_victim, say
        )
        result.check(
            "zero failed requests during the drain and removal", bool(records) and not failures, say
        )
    return result
