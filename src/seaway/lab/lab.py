"""A running lab: namespaces, pods, manifests, node rules, seaway and node agents.

``Lab`` owns everything it creates and removes all of it in :meth:`Lab.down`, which
``async with Lab(...)`` calls also on errors and cancellation (Ctrl-C). What a killed
run left behind is removed by the next :meth:`Lab.up`: lab namespaces are found by
their prefix, with the processes inside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from seaway.lab import topology
from seaway.lab.deployments import DeploymentController, Scheduler
from seaway.lab.kube_proxy_rules import apply_node_rules, render_node_rules
from seaway.lab.manifests import (
    NodeView,
    cluster_state,
    render_manifests,
    write_manifests,
)
from seaway.lab.namespace_threads import NamespaceThread
from seaway.lab.namespaces import (
    delete_namespace,
    exec_in,
    ip_available,
    namespace_names,
    run,
)
from seaway.lab.node_agent import node_agent_command
from seaway.lab.pods import Pod, PodRuntime
from seaway.lab.spec import LabSpec
from seaway.model.cluster import ClusterState

log = logging.getLogger("seaway.lab")

DEFAULT_STATE_DIR = Path("/run/seaway-lab")
STATE_FILE = "state.json"
SEAWAY_ADMIN_PORT = 9980
START_TIMEOUT_SECONDS = 30.0
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"


class LabError(RuntimeError):
    """The lab cannot be built or used; the message says why in a user's words."""


def remove_leftovers(state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """Remove every lab namespace (and its processes) and the state file; what was removed."""
    removed: list[str] = []
    state_path = state_dir / STATE_FILE
    owner = read_state(state_dir).get("pid")
    if isinstance(owner, int) and owner != os.getpid() and _running(owner):
        # A lab is up in another process: ask it to stop (it removes its own things).
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner, 15)
        deadline = time.monotonic() + 20
        while _running(owner) and time.monotonic() < deadline:
            time.sleep(0.1)
        removed.append(f"process {owner} (lab up)")
    # Pods first: their namespaces are the leaves.
    pod_prefix = topology.pod_namespace("")
    for namespace in sorted(namespace_names(), key=lambda n: (not n.startswith(pod_prefix), n)):
        pids = delete_namespace(namespace)
        removed.append(namespace + (f" ({len(pids)} processes)" if pids else ""))
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()
    with contextlib.suppress(FileNotFoundError):
        (state_dir / "control.sock").unlink()
    return removed


def read_state(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lab:
    """One lab built from ``spec``; use ``async with Lab(spec) as lab``."""

    def __init__(
        self,
        spec: LabSpec,
        *,
        state_dir: Path = DEFAULT_STATE_DIR,
        with_seaway: bool = True,
        say: Callable[[str], None] | None = None,
        dataplane: str = "proxy",
    ) -> None:
        self.spec = spec
        # seaway run --dataplane: "proxy" (its L4 proxy) or "nftables" (the kernel path).
        self.dataplane = dataplane
        self.state_dir = state_dir
        self.manifest_dir = state_dir / "manifests"
        self.log_dir = state_dir / "logs"
        self.with_seaway = with_seaway
        self.say = say or (lambda text: log.info("%s", text))
        self.threads: dict[str, NamespaceThread] = {}
        self.node_views = {n.name: NodeView(n.name, n.address, n.zone) for n in spec.nodes}
        self.removed_nodes: set[str] = set()
        self.scheduler = Scheduler(list(spec.nodes))
        self.changed = asyncio.Event()
        self.runtime = PodRuntime(self.threads, self.log_dir, self._on_pod_change)
        self.deployments = DeploymentController(
            spec.deployments,
            scheduler=self.scheduler,
            runtime=self.runtime,
            plug=self._plug,
            changed=self.changed,
            log=self.say,
        )
        self.processes: list[asyncio.subprocess.Process] = []
        self.node_agents: dict[str, asyncio.subprocess.Process] = {}
        self.notes: list[str] = []
        self.state = ClusterState()
        self.rules_applied: dict[str, float] = {}  # node -> when its rules were last replaced
        self._publish_queue: asyncio.Queue[tuple[float, ClusterState]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = False
        self._up = False

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Lab:
        try:
            await self.up()
        except BaseException:
            await self.down()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.down()

    async def up(self) -> None:
        """Build the topology, start seaway, node agents and pods; wait for the pods."""
        why = ip_available()
        if why:
            raise LabError(why)
        leftovers = await asyncio.to_thread(remove_leftovers, self.state_dir)
        if leftovers:
            self.say("removed leftovers of an earlier lab: " + ", ".join(leftovers))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state()
        self._up = True
        await asyncio.to_thread(topology.build, self.spec)
        for namespace in (topology.CLIENT, topology.LOAD_BALANCER):
            self.threads[namespace] = NamespaceThread(namespace)
        for node in self.spec.nodes:
            self.threads[node.name] = NamespaceThread(topology.node_namespace(node.name))
        self.say(
            f"topology up: client {self.spec.client.address}, load balancer "
            f"{self.spec.load_balancer.address}, nodes "
            + ", ".join(f"{n.name} {n.address}" for n in self.spec.nodes)
        )
        self._tasks.append(asyncio.create_task(self._propagate(), name="lab propagate"))
        self._tasks.append(asyncio.create_task(self._collect(), name="lab collect"))
        await self._publish(immediately=True)
        if self.with_seaway:
            await self._start_seaway()
        await self._start_node_agents()
        for name in self.deployments.deployments:
            await self.deployments.scale(name)
        for name in self.deployments.deployments:
            await self.deployments.wait_ready(name, START_TIMEOUT_SECONDS)
        await self.settle()
        self.say(
            "pods ready: "
            + ", ".join(f"{p.name} on {p.node.name} ({p.address})" for p in self.pods())
        )

    async def down(self) -> None:
        """Stop everything and remove every namespace; safe to call twice."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.gather(
            *(self.runtime.kill(p) for p in self.deployments.all_pods()), return_exceptions=True
        )
        for proc in [*self.processes, *self.node_agents.values()]:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    async with asyncio.timeout(3):
                        await proc.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(3):
                            await proc.wait()
        self.processes.clear()
        self.node_agents.clear()
        for thread in self.threads.values():
            thread.close()
        self.threads.clear()
        if self._up or namespace_names():
            await asyncio.to_thread(remove_leftovers, self.state_dir)
        self._up = False

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "source": self.spec.source,
            "manifests": str(self.manifest_dir),
            "startedAt": time.time(),
        }
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=1))

    # -- processes ---------------------------------------------------------------

    async def _spawn(self, namespace: str, name: str, *args: str) -> asyncio.subprocess.Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *exec_in(namespace, *args),
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        return proc

    async def start_process(
        self, namespace: str, name: str, *args: str
    ) -> asyncio.subprocess.Process:
        """Run ``args`` inside ``namespace`` until the lab goes down (which stops it);
        its output goes to ``logs/NAME.log``."""
        proc = await self._spawn(namespace, name, *args)
        self.processes.append(proc)
        return proc

    async def _start_seaway(self) -> None:
        proc = await self._spawn(
            topology.LOAD_BALANCER,
            "seaway",
            sys.executable,
            "-m",
            "seaway",
            "run",
            "-f",
            str(self.manifest_dir),
            "--admin",
            f"127.0.0.1:{SEAWAY_ADMIN_PORT}",
            "--state-file",
            str(self.state_dir / "addresses.json"),
            "--dataplane",
            self.dataplane,
        )
        self.processes.append(proc)
        thread = self.threads[topology.LOAD_BALANCER]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if proc.returncode is not None:
                raise LabError(f"seaway exited {proc.returncode}: see {self.log_dir}/seaway.log")
            try:
                _, writer = await thread.open_connection("127.0.0.1", SEAWAY_ADMIN_PORT, 0.5)
                writer.close()
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise LabError("seaway did not open its admin API in time") from None
                await asyncio.sleep(0.1)
        self.say(f"seaway runs on the load balancer, watching {self.manifest_dir}")

    async def _start_node_agents(self) -> None:
        command, why = await asyncio.to_thread(node_agent_command)
        if command is None:
            self.notes.append(f"node agents not started: {why}")
            self.say(f"note: node agents not started: {why}")
            return
        for node in self.spec.nodes:
            args = command(str(self.manifest_dir), node.name, node.address)
            self.node_agents[node.name] = await self._spawn(
                topology.node_namespace(node.name), f"node-agent-{node.name}", *args
            )
        self.say("seaway node-agent runs on every node")

    # -- pods --------------------------------------------------------------------

    async def _plug(self, pod: Pod) -> None:
        await asyncio.to_thread(
            topology.add_pod, self.spec, pod.node, pod.name, pod.address, pod.interface_index
        )

    def pods(self) -> list[Pod]:
        return sorted(self.deployments.all_pods(), key=lambda p: p.name)

    def _on_pod_change(self) -> None:
        self._dirty = True
        self.changed.set()

    async def _collect(self) -> None:
        """Publish changes; unplug pods whose process is gone (their namespaces go)."""
        while True:
            if self._dirty:
                self._dirty = False
                gone = self.deployments.forget_gone()
                await self._publish()
                for pod in gone:
                    await asyncio.to_thread(
                        delete_namespace, topology.pod_namespace(pod.name), grace=0.5
                    )
            await asyncio.sleep(0.02)

    # -- the cluster's view ------------------------------------------------------

    def manifests(self) -> list[dict[str, Any]]:
        """The cluster's objects as the lab writes them now (new dicts: change freely)."""
        return self._docs()

    def _docs(self) -> list[dict[str, Any]]:
        endpoints = [p.endpoint() for p in self.deployments.all_pods() if not p.gone]
        nodes = [v for name, v in self.node_views.items() if name not in self.removed_nodes]
        return render_manifests(self.spec, endpoints, nodes)

    async def _publish(self, *, immediately: bool = False) -> None:
        """Write the manifests now; queue the nodes' rules after the propagation delay."""
        docs = self._docs()
        state = cluster_state(docs)
        self.state = state
        await asyncio.to_thread(write_manifests, self.manifest_dir, docs)
        due = time.monotonic() + (0.0 if immediately else self.spec.propagation_seconds)
        if immediately:
            await asyncio.to_thread(self._apply_rules, state)
        else:
            self._publish_queue.put_nowait((due, state))

    async def _propagate(self) -> None:
        """kube-proxy on every node: apply each view ``propagationSeconds`` after it changed."""
        while True:
            due, state = await self._publish_queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            while not self._publish_queue.empty():
                later_due, later = self._publish_queue.get_nowait()
                if later_due > time.monotonic():
                    await asyncio.to_thread(self._apply_rules, state)
                    await asyncio.sleep(max(0.0, later_due - time.monotonic()))
                state = later  # views already due supersede each other
            await asyncio.to_thread(self._apply_rules, state)

    def _apply_rules(self, state: ClusterState) -> None:
        cluster_cidr = _cluster_cidr(self.spec)
        for node in self.spec.nodes:
            if node.name in self.removed_nodes:
                continue
            script = render_node_rules(state, node.name, cluster_cidr)
            apply_node_rules(topology.node_namespace(node.name), script)
            self.rules_applied[node.name] = time.monotonic()

    async def settle(self) -> None:
        """Wait until every queued view reached the nodes."""
        await asyncio.sleep(0.05)
        # Polls state that the collect and propagate tasks own.
        while not self._publish_queue.empty() or self._dirty:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.spec.propagation_seconds + 0.1)

    # -- nodes -------------------------------------------------------------------

    async def taint_node(self, name: str) -> None:
        """Mark ``name`` for deletion as the cluster autoscaler does (taint, cordon)."""
        view = self.node_views[name]
        self.node_views[name] = NodeView(
            view.name,
            view.address,
            view.zone,
            ((TO_BE_DELETED_TAINT, "NoSchedule"),),
            unschedulable=True,
        )
        self.scheduler.cordoned.add(name)
        self.say(f"node {name} tainted {TO_BE_DELETED_TAINT} and cordoned")
        await self._publish()

    async def untaint_node(self, name: str) -> None:
        """Undo :meth:`taint_node`: the node is a load-balancer backend again."""
        view = self.node_views[name]
        self.node_views[name] = NodeView(view.name, view.address, view.zone)
        self.scheduler.cordoned.discard(name)
        self.say(f"node {name} untainted and uncordoned")
        await self._publish()

    async def annotate_service(self, name: str, annotations: dict[str, str]) -> None:
        """Set Service ``name``'s extra annotations to ``annotations`` and publish them."""
        services = tuple(
            replace(s, annotations=tuple(sorted(annotations.items()))) if s.name == name else s
            for s in self.spec.services
        )
        self.spec = replace(self.spec, services=services)
        self.say(
            f"Service {name} annotated: "
            + ", ".join(f"{k}={v}" for k, v in sorted(annotations.items()))
        )
        await self._publish()

    async def drain_node(self, name: str) -> None:
        """Evict every pod of ``name`` (the full lifecycle); replacements go elsewhere."""
        pods = [p for p in self.deployments.all_pods() if p.node.name == name and not p.gone]
        tasks = [self.runtime.delete(p) for p in pods]
        self.say(f"node {name} drained: evicting " + (", ".join(p.name for p in pods) or "none"))
        await self.deployments.reconcile()
        if tasks:
            await asyncio.gather(*tasks)

    async def remove_node(self, name: str) -> None:
        """Delete the Node object and the machine (its namespace) itself."""
        self.removed_nodes.add(name)
        await self._publish()
        agent = self.node_agents.pop(name, None)
        if agent is not None and agent.returncode is None:
            agent.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await agent.wait()
        thread = self.threads.pop(name, None)
        if thread is not None:
            thread.close()
        await asyncio.to_thread(delete_namespace, topology.node_namespace(name))
        self.say(f"node {name} removed")

    # -- status ------------------------------------------------------------------

    def status_lines(self) -> list[str]:
        lines = [f"lab from {self.spec.source}; manifests in {self.manifest_dir}"]
        for node in self.spec.nodes:
            state = (
                "removed"
                if node.name in self.removed_nodes
                else ("tainted" if self.node_views[node.name].taints else "ready")
            )
            lines.append(f"node {node.name} {node.address} zone {node.zone}: {state}")
        for pod in self.pods():
            conditions = (
                "terminating" if pod.terminating else ("ready" if pod.serving else "not ready")
            )
            lines.append(f"pod {pod.name} on {pod.node.name} {pod.address}: {conditions}")
        lines += [f"note: {n}" for n in self.notes]
        return lines


def _cluster_cidr(spec: LabSpec) -> str:
    """The smallest network holding every pod CIDR (kube-proxy's --cluster-cidr)."""
    nets = [ipaddress.ip_network(n.pod_cidr) for n in spec.nodes]
    net = nets[0]
    while not all(n.subnet_of(net) for n in nets):  # type: ignore[arg-type]
        net = net.supernet()
    return str(net)


def host_leftovers() -> list[str]:
    """Lab things visible from the host: namespaces, nft tables, interfaces, processes."""
    found = [f"namespace {n}" for n in namespace_names()]
    tables = run(["nft", "list", "tables"], check=False)
    found += [f"nft {t.strip()}" for t in tables.splitlines() if "seaway-lab" in t]
    links = run(["ip", "-o", "link"], check=False)
    found += [
        f"interface {line.split(':')[1].strip()}"
        for line in links.splitlines()
        if "seaway-lab" in line
    ]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=False)
    found += [
        f"process {line.strip()}"
        for line in ps.stdout.splitlines()
        if "netns exec seaway-lab-" in line and "ps -eo" not in line
    ]
    return found
