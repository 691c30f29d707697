"""The Deployment controller of the lab: replicas, scheduling, and rolling updates.

Rolling updates follow the Deployment controller (pkg/controller/deployment/rolling.go):
new pods are added while the pods not being deleted number at most
``replicas + maxSurge``; old pods are deleted while the available pods (serving,
not terminating) stay at least ``replicas - maxUnavailable``; unavailable old pods go
first. Terminating pods count for neither bound, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from seaway.lab.pods import Pod, PodRuntime
from seaway.lab.spec import DeploymentSpec, NodeSpec

ROLLOUT_TIMEOUT_SECONDS = 120.0


@dataclass
class DeploymentState:
    """One deployment: its current template, revision and pods (old and new)."""

    spec: DeploymentSpec
    revision: int = 1
    pods: list[Pod] = field(default_factory=list)
    counter: int = 0

    def live(self) -> list[Pod]:
        """Pods not being deleted."""
        return [p for p in self.pods if not p.terminating]


class Scheduler:
    """Places pods on nodes (fewest pods first) and hands out pod addresses."""

    def __init__(self, nodes: list[NodeSpec]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.cordoned: set[str] = set()
        self._next_host: dict[str, int] = {}
        self._next_index: dict[str, int] = {}

    def schedulable(self) -> list[NodeSpec]:
        return [n for n in self.nodes.values() if n.pods and n.name not in self.cordoned]

    def place(self, pods: list[Pod]) -> NodeSpec:
        candidates = self.schedulable()
        if not candidates:
            raise RuntimeError("no node can take a pod (all cordoned or pods: false)")
        load = {n.name: 0 for n in candidates}
        for pod in pods:
            if not pod.terminating and pod.node.name in load:
                load[pod.node.name] += 1
        return min(candidates, key=lambda n: (load[n.name], n.name))

    def address(self, node: NodeSpec) -> tuple[str, int]:
        """A new pod address on ``node`` (never reused in one lab) and a veth index."""
        network = ipaddress.ip_network(node.pod_cidr)
        host = self._next_host.get(node.name, 2)  # .1 is the node's bridge
        if host >= network.num_addresses - 1:
            raise RuntimeError(f"node {node.name} has no pod address left in {network}")
        self._next_host[node.name] = host + 1
        index = self._next_index.get(node.name, 0)
        self._next_index[node.name] = index + 1
        return str(network[host]), index


PlugPod = Callable[[Pod], Awaitable[None]]


class DeploymentController:
    """Keeps each deployment at its replicas and performs rolling updates."""

    def __init__(
        self,
        specs: tuple[DeploymentSpec, ...],
        *,
        scheduler: Scheduler,
        runtime: PodRuntime,
        plug: PlugPod,
        changed: asyncio.Event,
        log: Callable[[str], None],
    ) -> None:
        self.deployments = {s.name: DeploymentState(s) for s in specs}
        self._scheduler = scheduler
        self._runtime = runtime
        self._plug = plug
        self._changed = changed
        self._log = log
        self._rolling: set[str] = set()

    def all_pods(self) -> list[Pod]:
        return [p for d in self.deployments.values() for p in d.pods]

    async def create_pod(self, state: DeploymentState) -> Pod:
        node = self._scheduler.place(self.all_pods())
        address, index = self._scheduler.address(node)
        state.counter += 1
        pod = Pod(
            name=f"{state.spec.name}-r{state.revision}-{state.counter}",
            deployment=state.spec.name,
            revision=state.revision,
            template=state.spec,
            node=node,
            address=address,
            interface_index=index,
        )
        state.pods.append(pod)
        await self._plug(pod)
        await self._runtime.start(pod)
        self._log(f"pod {pod.name} created on {node.name} ({address})")
        return pod

    async def scale(self, name: str) -> None:
        """Create pods until the deployment has its replicas (not counting terminating ones)."""
        state = self.deployments[name]
        while len(state.live()) < state.spec.replicas:
            await self.create_pod(state)

    async def reconcile(self) -> None:
        """What a ReplicaSet does after pods were deleted: replace them (not while rolling)."""
        for name in self.deployments:
            if name not in self._rolling:
                await self.scale(name)

    def forget_gone(self) -> list[Pod]:
        """Drop pods whose process is gone; returns them (to unplug)."""
        gone: list[Pod] = []
        for state in self.deployments.values():
            gone += [p for p in state.pods if p.gone]
            state.pods = [p for p in state.pods if not p.gone]
        return gone

    async def wait_ready(self, name: str, limit: float) -> None:
        """Wait until ``name`` has its replicas available (serving, not terminating)."""
        state = self.deployments[name]
        deadline = time.monotonic() + limit
        while sum(p.available for p in state.live()) < state.spec.replicas:
            await self._wait_change(deadline, f"deployment {name} not ready")

    async def _wait_change(self, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what} within the time allowed")
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(remaining, 0.25)):
                await self._changed.wait()

    async def rollout(self, name: str, template: DeploymentSpec | None = None) -> int:
        """Roll ``name`` to a new revision (with ``template`` if given); the new revision."""
        state = self.deployments[name]
        if template is not None:
            state.spec = template
        state.revision += 1
        revision = state.revision
        spec = state.spec
        self._rolling.add(name)
        self._log(
            f"rollout {name} to revision {revision}: maxSurge {spec.max_surge}, "
            f"maxUnavailable {spec.max_unavailable}"
        )
        deadline = time.monotonic() + ROLLOUT_TIMEOUT_SECONDS
        try:
            while True:
                live = state.live()
                old = [p for p in live if p.revision != revision]
                new = [p for p in live if p.revision == revision]
                if not old and len(new) >= spec.replicas and all(p.available for p in new):
                    break
                if len(live) < spec.replicas + spec.max_surge and len(new) < spec.replicas:
                    await self.create_pod(state)
                    continue
                available = sum(p.available for p in live)
                can_remove = available - (spec.replicas - spec.max_unavailable)
                # Unavailable old pods cost nothing to remove; then available ones.
                for pod in sorted(old, key=lambda p: (p.available, p.started_at)):
                    if not pod.available or can_remove > 0:
                        if pod.available:
                            can_remove -= 1
                        self._log(f"pod {pod.name} deleted (rollout)")
                        self._runtime.delete(pod)
                if len(state.live()) == len(live):
                    await self._wait_change(deadline, f"rollout of {name}")
        finally:
            self._rolling.discard(name)
        self._log(f"rollout {name}: revision {revision} available")
        return revision
