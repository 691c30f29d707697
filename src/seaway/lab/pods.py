"""Pods with the Kubernetes lifecycle, and the Deployment controller that makes and rolls them.

A pod is a namespace plugged into its node and a ``seaway backend`` process inside it.
What the kubelet does is done here, in the same order (pkg/kubelet, KEP-1672):

- started: the pod has an address and is listed in the EndpointSlice, not serving;
- the readiness probe (HTTP GET from the node, every ``periodSeconds``) must pass
  ``successThreshold`` times before the pod serves, and fail ``failureThreshold``
  times before it stops serving; probes go on while the pod terminates;
- deleted: terminating at once (EndpointSlice ready=false, serving=readiness), then
  the preStop hook (a sleep), then SIGTERM, then SIGKILL when
  ``terminationGracePeriodSeconds`` since the deletion have passed (the grace period
  includes preStop); once the process is gone the pod leaves the EndpointSlice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from seaway.lab.http_probe import http_get
from seaway.lab.manifests import PodEndpoint
from seaway.lab.namespace_threads import NamespaceThread
from seaway.lab.namespaces import exec_in
from seaway.lab.spec import DeploymentSpec, NodeSpec
from seaway.lab.topology import pod_namespace

# After SIGKILL, how long to wait for the process to be reaped.
KILL_WAIT_SECONDS = 5.0


@dataclass
class Pod:
    """One pod: where it runs, its template, its conditions and what happened to it."""

    name: str
    deployment: str
    revision: int
    template: DeploymentSpec
    node: NodeSpec
    address: str
    interface_index: int
    started_at: float = field(default_factory=time.monotonic)
    process: asyncio.subprocess.Process | None = None
    serving: bool = False
    terminating: bool = False
    deleted_at: float | None = None
    exited_at: float | None = None
    killed: bool = False  # SIGKILL was needed
    events: list[tuple[float, str]] = field(default_factory=list)
    _probe_task: asyncio.Task[None] | None = None
    _delete_task: asyncio.Task[None] | None = None

    def endpoint(self) -> PodEndpoint:
        return PodEndpoint(
            name=self.name,
            deployment=self.deployment,
            address=self.address,
            node=self.node.name,
            zone=self.node.zone,
            serving=self.serving,
            terminating=self.terminating,
        )

    def note(self, text: str) -> None:
        self.events.append((time.monotonic(), text))

    @property
    def gone(self) -> bool:
        return self.exited_at is not None

    @property
    def available(self) -> bool:
        return self.serving and not self.terminating


class PodRuntime:
    """Starts, probes and deletes pods (the kubelet's part); tells ``on_change`` each change."""

    def __init__(
        self,
        node_threads: dict[str, NamespaceThread],
        log_dir: Path,
        on_change: Callable[[], None],
    ) -> None:
        self._node_threads = node_threads
        self._log_dir = log_dir
        self._on_change = on_change

    async def start(self, pod: Pod) -> None:
        """Run the pod's backend in its namespace (already plugged in) and start probing."""
        t = pod.template
        args = exec_in(
            pod_namespace(pod.name),
            sys.executable,
            "-m",
            "seaway",
            "backend",
            "--listen",
            f"0.0.0.0:{t.container_port}",
            "--name",
            pod.name,
            "--delay-shutdown",
            str(t.delay_shutdown_seconds),
            "--no-udp",
        )
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with (self._log_dir / f"pod-{pod.name}.log").open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches the lab, which then
            # stops pods itself; the pods never see the terminal's SIGINT.
            pod.process = await asyncio.create_subprocess_exec(
                *args,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        pod.note("started")
        pod._probe_task = asyncio.create_task(self._probe(pod), name=f"probe {pod.name}")
        self._on_change()

    async def _probe(self, pod: Pod) -> None:
        probe = pod.template.readiness_probe
        thread = self._node_threads[pod.node.name]
        successes = failures = 0
        while not pod.gone:
            try:
                answer = await http_get(
                    thread,
                    pod.address,
                    pod.template.container_port,
                    probe.path,
                    probe.timeout_seconds,
                )
                passed = 200 <= answer.status < 400  # the kubelet's httpGet rule
            except (OSError, TimeoutError, ValueError):
                passed = False
            if passed:
                successes, failures = successes + 1, 0
                if not pod.serving and successes >= probe.success_threshold:
                    pod.serving = True
                    pod.note("readiness probe passed: serving")
                    self._on_change()
            else:
                failures, successes = failures + 1, 0
                if pod.serving and failures >= probe.failure_threshold:
                    pod.serving = False
                    pod.note("readiness probe failed: not serving")
                    self._on_change()
            await asyncio.sleep(probe.period_seconds)

    def delete(self, pod: Pod) -> asyncio.Task[None]:
        """Begin deleting ``pod`` (idempotent); the task ends when the process is gone."""
        if pod._delete_task is None:
            # Terminating from this moment, before any await: controllers counting
            # live pods (a ReplicaSet replacing evicted ones) see it at once.
            now = time.monotonic()
            pod.deleted_at = now
            pod.terminating = True
            pod.note("deleted: terminating (EndpointSlice ready=false)")
            self._on_change()
            pod._delete_task = asyncio.create_task(
                self._terminate(pod, now), name=f"delete {pod.name}"
            )
        return pod._delete_task

    async def _terminate(self, pod: Pod, now: float) -> None:
        t = pod.template
        deadline = now + t.termination_grace_period_seconds
        if t.pre_stop_sleep_seconds > 0:
            pod.note(f"preStop: sleep {t.pre_stop_sleep_seconds:g} s")
            await asyncio.sleep(min(t.pre_stop_sleep_seconds, max(0.0, deadline - now)))
        proc = pod.process
        if proc is not None and proc.returncode is None:
            pod.note("SIGTERM")
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await proc.wait()
            except TimeoutError:
                pod.note("grace period over: SIGKILL")
                pod.killed = True
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KILL_WAIT_SECONDS):
                        await proc.wait()
        pod.exited_at = time.monotonic()
        pod.serving = False
        pod.note("exited")
        if pod._probe_task is not None:
            pod._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pod._probe_task
        self._on_change()

    async def kill(self, pod: Pod) -> None:
        """Stop ``pod`` at once (lab teardown, not the Kubernetes lifecycle)."""
        if pod._probe_task is not None:
            pod._probe_task.cancel()
        if pod._delete_task is not None:
            pod._delete_task.cancel()
        proc = pod.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_WAIT_SECONDS):
                    await proc.wait()
        pod.exited_at = pod.exited_at or time.monotonic()
