"""[kernel-vs-proxy] Throughput and latency of the kernel path, seaway's L4 proxy and
HAProxy in TCP mode, side by side in the lab.

On the load-balancer host, three load balancers send the same Service's traffic to the
same backends, the nodes at the nodePort (whose kube-proxy rules pick a pod):

- the kernel path: ``seaway run --dataplane nftables`` (NAT, Maglev), the Service's
  address and port;
- seaway's L4 proxy: a second ``seaway run`` (``--dataplane proxy``) serving a copy of
  the Service on another port of that address;
- HAProxy, ``mode tcp``, one thread, round-robin over the nodes, on a third port.

From the client's namespace, a bounded keep-alive load (wrk, or a Python generator
when wrk is missing) runs against each in turn, A B C twice, a few seconds each.
Printed: requests/s, p50 and p99 latency per run and their medians. No speed is
promised (the machine may be shared and noisy); the promise is that all three served
the load and produced figures.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seaway.lab import topology
from seaway.lab.http_probe import http_get
from seaway.lab.kernel_rules import wait_for_backends
from seaway.lab.lab import SEAWAY_ADMIN_PORT, Lab
from seaway.lab.manifests import write_manifests
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec, ServiceSpec
from seaway.lab.throughput import CONNECTIONS, LoadFigures, measure

NAME = "kernel-vs-proxy"
SECONDS = 5.0  # each run
ROUNDS = 2  # A B C, then A B C again
PATH = "/hostname"
PROXY_PORT = 8081  # seaway's L4 proxy: the same address, this port
HAPROXY_PORT = 8082
READY_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Contender:
    """One load balancer under test: its name for people, and where it listens."""

    name: str
    address: str
    port: int


def proxy_manifests(
    docs: list[dict[str, Any]], service: ServiceSpec, admin_port: int
) -> list[dict[str, Any]]:
    """The lab's objects for a second seaway: ``service`` alone, on ``PROXY_PORT``, its
    own admin port; the pool, the nodes and the settings otherwise as they are."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"].get("name")
        if kind in ("Service", "EndpointSlice") and name not in (
            service.name,
            f"{service.name}-lab",
        ):
            continue
        if kind == "Service":
            doc["spec"]["ports"][0]["port"] = PROXY_PORT
        if kind == "SeawayConfig":
            doc["spec"]["adminAddress"] = f"127.0.0.1:{admin_port}"
        out.append(doc)
    return out


def haproxy_config(spec: LabSpec, service: ServiceSpec, address: str) -> str:
    """HAProxy in TCP mode, one thread, round-robin over every node's nodePort."""
    servers = "\n".join(f"  server {n.name} {n.address}:{service.node_port}" for n in spec.nodes)
    return (
        "global\n"
        "  nbthread 1\n"
        # Within the default RLIMIT_NOFILE of a root shell (2 fds per connection).
        "  maxconn 4096\n"
        "defaults\n"
        "  mode tcp\n"
        "  timeout connect 1s\n"
        "  timeout client 30s\n"
        "  timeout server 30s\n"
        "frontend lab\n"
        f"  bind {address}:{HAPROXY_PORT}\n"
        "  default_backend nodes\n"
        "backend nodes\n"
        "  balance roundrobin\n"
        f"{servers}\n"
    )


async def _wait_serving(lab: Lab, contender: Contender) -> None:
    thread = lab.threads[topology.CLIENT]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_SECONDS
    while True:
        try:
            answer = await http_get(thread, contender.address, contender.port, PATH, 1.0)
            if answer.status == 200:
                return
        except (OSError, TimeoutError, ValueError):
            pass
        if loop.time() > deadline:
            raise TimeoutError(f"{contender.name} did not serve in time")
        await asyncio.sleep(0.2)


async def _start_contenders(lab: Lab, service: ServiceSpec) -> list[Contender]:
    spec = lab.spec
    address = service.load_balancer_ip
    kernel = Contender("kernel (nftables)", address, service.port)
    proxy = Contender("seaway L4 proxy", address, PROXY_PORT)
    haproxy = Contender("HAProxy mode tcp", address, HAPROXY_PORT)
    directory = lab.state_dir / "proxy-manifests"
    write_manifests(directory, proxy_manifests(lab.manifests(), service, SEAWAY_ADMIN_PORT + 1))
    await lab.start_process(
        topology.LOAD_BALANCER,
        "seaway-proxy",
        sys.executable,
        "-m",
        "seaway",
        "run",
        "-f",
        str(directory),
        "--admin",
        f"127.0.0.1:{SEAWAY_ADMIN_PORT + 1}",
        "--dataplane",
        "proxy",
        "--state-file",
        str(lab.state_dir / "proxy-addresses.json"),
        "--shutdown-delay",
        "0",
    )
    config = lab.state_dir / "haproxy.cfg"
    config.write_text(haproxy_config(spec, service, address))
    await lab.start_process(topology.LOAD_BALANCER, "haproxy", "haproxy", "-db", "-f", str(config))
    await wait_for_backends(service, {n.address for n in spec.nodes})
    for contender in (kernel, proxy, haproxy):
        await _wait_serving(lab, contender)
    return [kernel, proxy, haproxy]


def _median(runs: list[LoadFigures], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


async def run(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    if shutil.which("haproxy") is None:
        result.check("HAProxy is installed (needed for the comparison)", False, say)
        return result
    service = spec.cluster_service()
    async with Lab(spec, state_dir=state_dir, say=say, dataplane="nftables") as lab:
        try:
            contenders = await _start_contenders(lab, service)
        except TimeoutError as exc:
            result.check(f"every load balancer serves ({exc}; see {lab.log_dir})", False, say)
            return result
        thread = lab.threads[topology.CLIENT]
        tool = "wrk" if shutil.which("wrk") else "a Python generator (wrk is not installed)"
        say("")
        say(
            f"{CONNECTIONS} keep-alive connections from the client ({tool}), GET {PATH}, "
            f"{SECONDS:g} s per run, {ROUNDS} rounds of: "
            + ", ".join(f"{c.name} {c.address}:{c.port}" for c in contenders)
        )
        say(
            f"every one sends to the nodes at nodePort {service.node_port} "
            f"({', '.join(n.name for n in spec.nodes)})"
        )
        runs: dict[str, list[LoadFigures]] = {c.name: [] for c in contenders}
        for round_number in range(1, ROUNDS + 1):
            for contender in contenders:
                figures = await measure(thread, contender.address, contender.port, PATH, SECONDS)
                runs[contender.name].append(figures)
                say(
                    f"  round {round_number} {contender.name:18} "
                    f"{figures.requests_per_second:9.0f} requests/s  p50 "
                    f"{figures.p50_ms:7.2f} ms  p99 {figures.p99_ms:7.2f} ms  "
                    f"errors {figures.errors}"
                )
        say("")
        say(
            f"  {'load balancer':18} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}  "
            f"(medians of {ROUNDS} runs)"
        )
        table: dict[str, dict[str, float]] = {}
        for contender in contenders:
            figures_list = runs[contender.name]
            row = {
                "requests_per_second": round(_median(figures_list, "requests_per_second"), 1),
                "p50_ms": round(_median(figures_list, "p50_ms"), 3),
                "p99_ms": round(_median(figures_list, "p99_ms"), 3),
                "errors": sum(f.errors for f in figures_list),
                "runs": len(figures_list),
            }
            table[contender.name] = row
            say(
                f"  {contender.name:18} {row['requests_per_second']:11.0f} "
                f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f}"
            )
        base = table[contenders[-1].name]["requests_per_second"] or 1.0
        say(
            "  requests/s relative to HAProxy: "
            + ", ".join(
                f"{name} {row['requests_per_second'] / base:.2f}x" for name, row in table.items()
            )
        )
        result.numbers.update(
            table=table, tool=tool, seconds=SECONDS, rounds=ROUNDS, connections=CONNECTIONS
        )
        for contender in contenders:
            figures_list = runs[contender.name]
            result.check(
                f"{contender.name}: {len(figures_list)} runs served the load and gave figures",
                len(figures_list) == ROUNDS
                and all(
                    f.requests > 0 and f.requests_per_second > 0 and f.p99_ms > 0
                    for f in figures_list
                ),
                say,
            )
    return result
