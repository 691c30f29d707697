"""[idle-reset] An idle TCP connection outlives the load balancer's flow tracking while a
backend node leaves: is it reset when it speaks again?

seaway serves the Service through the kernel (``--dataplane nftables``, NAT, nodes as
backends) with a short flow idle timeout (``seaway.io/flow-idle-timeout``). For each
selection (``seaway.io/kernel-selection``: random, modulo, maglev):

1. the client opens idle connections, and connections with TCP keepalives shorter
   than the timeout, each answered once (the answer names the node it entered);
2. one node is taken out of the backends (tainted ToBeDeletedByClusterAutoscaler);
3. everyone stays silent longer than the timeout: the load balancer forgets the idle
   flows (conntrack), the keepalives keep theirs;
4. every connection sends again. A forgotten flow is hashed anew: if it lands on
   another node, that node knows nothing of it and the pod answers with a TCP reset.
   The client counts the resets it receives (an nftables counter in its namespace).

Promises: with random and modulo, idle connections whose node is still a backend are
reset; with Maglev none of them is (their slots did not move); keepalives keep every
connection alive under any selection, those through the node that left included
(conntrack keeps draining flows on their node).
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from seaway.core.balancers.maglev import build_maglev_table
from seaway.dataplane.nftables.options import table_size_for
from seaway.lab import topology
from seaway.lab.lab import Lab
from seaway.lab.load import classify
from seaway.lab.namespace_threads import NamespaceThread
from seaway.lab.namespaces import run as run_command
from seaway.lab.scenarios.result import Say, ScenarioResult
from seaway.lab.spec import LabSpec
from seaway.model.annotations import FLOW_IDLE_TIMEOUT, KERNEL_SELECTION

NAME = "idle-reset"
IDLE_TIMEOUT_SECONDS = 3
# Silence longer than the timeout by this much: conntrack expiry is checked lazily, on
# the next packet, so a small margin suffices.
IDLE_MARGIN_SECONDS = 1.5
IDLE_CONNECTIONS = 24
KEEPALIVE_CONNECTIONS = 4
KEEPALIVE_SECONDS = 1  # TCP_KEEPIDLE and TCP_KEEPINTVL: well inside the timeout
REQUEST_SECONDS = 3.0
SELECTIONS = ("random", "modulo", "maglev")
# seaway's file source polls every 0.2 s and health checks may hold a node back a while.
RULES_WAIT_SECONDS = 20.0
RST_TABLE = "seaway-lab-rst-count"


@dataclass
class Connection:
    """One client connection: where it first went, and how it fared after the silence."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    keepalive: bool
    node: str = ""
    after: str = ""  # "ok", or the failure


async def _get(conn: Connection, path: str) -> str:
    """GET ``path`` on the connection; the body."""
    conn.writer.write(f"GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n".encode())
    async with asyncio.timeout(REQUEST_SECONDS):
        head = await conn.reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode(errors="replace").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    async with asyncio.timeout(REQUEST_SECONDS):
        body = await conn.reader.readexactly(length)
    return body.decode(errors="replace")


async def _open(thread: NamespaceThread, host: str, port: int, keepalive: bool) -> Connection:
    reader, writer = await thread.open_connection(host, port, REQUEST_SECONDS)
    if keepalive:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_SECONDS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_SECONDS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 5)
    return Connection(reader, writer, keepalive)


def rst_counter_script(address: str, port: int) -> str:
    """A table in the client's namespace counting TCP resets from ``address:port``."""
    return (
        f"table ip {RST_TABLE}\n"
        f"delete table ip {RST_TABLE}\n"
        f"table ip {RST_TABLE} {{\n"
        "  counter resets { }\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    ip saddr {address} tcp sport {port} tcp flags & rst == rst counter name resets\n"
        "  }\n"
        "}\n"
    )


def read_resets() -> int:
    out = run_command(
        [
            "ip",
            "netns",
            "exec",
            topology.CLIENT,
            "nft",
            "-j",
            "list",
            "counter",
            "ip",
            RST_TABLE,
            "resets",
        ]
    )
    for item in json.loads(out).get("nftables", []):
        if "counter" in item:
            return int(item["counter"]["packets"])
    return 0


def selection_elements(selection: str) -> str | None:
    """The load balancer's selection map for ``selection`` as nft lists it (None: none)."""
    listed = run_command(
        ["ip", "netns", "exec", topology.LOAD_BALANCER, "nft", "list", "table", "ip", "seaway"],
        check=False,
    )
    at = listed.find(f"map {selection}")
    if at < 0:
        return None
    return listed[at : listed.find("\n\t}", at)]


async def wait_for_rules(selection: str, address: str, *, present: bool) -> None:
    """Wait until seaway's rules use ``selection`` with (or without) node ``address``."""
    deadline = asyncio.get_running_loop().time() + RULES_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        listed = await asyncio.to_thread(selection_elements, selection)
        if listed is not None and (f"{address} . " in listed) == present:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(
        f"seaway did not apply selection {selection} "
        f"({'with' if present else 'without'} {address}) in time"
    )


def node_of(spec: LabSpec, source: str) -> str:
    """The node a connection entered, from the source address the pod saw."""
    for node in spec.nodes:
        if source in (node.address, node.pod_gateway):
            return node.name
    return "?"


def maglev_moves(spec: LabSpec, leaving: str) -> tuple[int, int]:
    """Slots of the staying nodes that change owner when ``leaving`` leaves, and how many
    they held (the same table seaway builds: nodes at the nodePort, sized by the count)."""
    service = next(s for s in spec.services if s.external_traffic_policy == "Cluster")
    keys = sorted(f"{n.address}:{service.node_port}" for n in spec.nodes)
    gone = f"{spec.node(leaving).address}:{service.node_port}"
    size = table_size_for(len(keys))
    before = [keys[i] for i in build_maglev_table([(k, 1) for k in keys], size)]
    staying = [k for k in keys if k != gone]
    after = [staying[i] for i in build_maglev_table([(k, 1) for k in staying], size)]
    owned = [i for i, k in enumerate(before) if k != gone]
    return sum(1 for i in owned if after[i] != before[i]), len(owned)


async def _round(lab: Lab, selection: str, leaving: str, say: Say) -> dict[str, int]:
    spec = lab.spec
    service = next(s for s in spec.services if s.external_traffic_policy == "Cluster")
    await lab.untaint_node(leaving)
    await lab.annotate_service(
        service.name,
        {KERNEL_SELECTION: selection, FLOW_IDLE_TIMEOUT: str(IDLE_TIMEOUT_SECONDS)},
    )
    leaving_address = spec.node(leaving).address
    await wait_for_rules(selection, leaving_address, present=True)
    client = lab.threads[topology.CLIENT]
    conns: list[Connection] = []
    try:
        for i in range(IDLE_CONNECTIONS + KEEPALIVE_CONNECTIONS):
            conns.append(
                await _open(
                    client, service.load_balancer_ip, service.port, keepalive=i >= IDLE_CONNECTIONS
                )
            )
        for conn in conns:
            conn.node = node_of(spec, (await _get(conn, "/clientip")).rsplit(":", 1)[0])
        before = read_resets()
        silent_from = asyncio.get_running_loop().time()
        await lab.taint_node(leaving)
        await wait_for_rules(selection, leaving_address, present=False)
        silent = asyncio.get_running_loop().time() - silent_from
        await asyncio.sleep(max(0.0, IDLE_TIMEOUT_SECONDS + IDLE_MARGIN_SECONDS - silent))
        for conn in conns:
            try:
                await _get(conn, "/clientip")
                conn.after = "ok"
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.after = (
                    "connection reset"
                    if isinstance(exc, asyncio.IncompleteReadError)
                    else classify(exc)
                )
        resets = read_resets() - before
    finally:
        for conn in conns:
            conn.writer.close()
    idle = [c for c in conns if not c.keepalive]
    kept = [c for c in idle if c.node != leaving]
    numbers = {
        "rst_packets": resets,
        "idle_staying_reset": sum(1 for c in kept if c.after != "ok"),
        "idle_staying": len(kept),
        "idle_leaving_reset": sum(1 for c in idle if c.node == leaving and c.after != "ok"),
        "idle_leaving": sum(1 for c in idle if c.node == leaving),
        "keepalive_failed": sum(1 for c in conns if c.keepalive and c.after != "ok"),
        "keepalive": KEEPALIVE_CONNECTIONS,
    }
    say(
        f"  {selection:7}: idle connections on nodes that stayed: "
        f"{numbers['idle_staying_reset']} of {numbers['idle_staying']} reset; on {leaving}: "
        f"{numbers['idle_leaving_reset']} of {numbers['idle_leaving']} reset; with keepalives: "
        f"{numbers['keepalive_failed']} of {KEEPALIVE_CONNECTIONS} failed; "
        f"{resets} RST(s) counted at the client"
    )
    return numbers


async def run_scenario(spec: LabSpec, state_dir: Path, say: Say) -> ScenarioResult:
    result = ScenarioResult(NAME)
    leaving = spec.nodes[-1].name
    async with Lab(spec, state_dir=state_dir, say=say, dataplane="nftables") as lab:
        service = next(s for s in spec.services if s.external_traffic_policy == "Cluster")
        run_command(
            ["ip", "netns", "exec", topology.CLIENT, "nft", "-f", "-"],
            stdin=rst_counter_script(service.load_balancer_ip, service.port),
        )
        say("")
        say(
            f"{IDLE_CONNECTIONS} idle and {KEEPALIVE_CONNECTIONS} keepalive connections "
            f"to {service.load_balancer_ip}:{service.port} (the kernel path, NAT, flow idle "
            f"timeout {IDLE_TIMEOUT_SECONDS} s); node {leaving} leaves the backends; "
            f"{IDLE_TIMEOUT_SECONDS + IDLE_MARGIN_SECONDS:g} s of silence; then every "
            "connection sends again"
        )
        for selection in SELECTIONS:
            result.numbers[selection] = await _round(lab, selection, leaving, say)
        for selection in ("random", "modulo"):
            n = result.numbers[selection]
            result.check(
                f"{selection}: idle connections whose node stayed are reset "
                f"({n['idle_staying_reset']} of {n['idle_staying']}, "
                f"{n['rst_packets']} RSTs)",
                n["idle_staying_reset"] > 0 and n["rst_packets"] > 0,
                say,
            )
        n = result.numbers["maglev"]
        moved, owned = maglev_moves(spec, leaving)
        say(
            f"  Maglev moved {moved} of the {owned} slots of the nodes that stayed "
            f"({100 * moved / max(owned, 1):.1f} %): only flows hashed to those are re-sent "
            "elsewhere"
        )
        result.check(
            f"maglev: idle connections whose node stayed survive "
            f"({n['idle_staying'] - n['idle_staying_reset']} of {n['idle_staying']}; at most "
            f"one may hash to a moved slot)",
            n["idle_staying"] > 0
            and n["idle_staying_reset"] <= 1
            and n["idle_staying_reset"]
            < min(result.numbers[s]["idle_staying_reset"] for s in ("random", "modulo")),
            say,
        )
        result.check(
            "keepalives shorter than the timeout keep every connection alive, under any selection",
            all(result.numbers[s]["keepalive_failed"] == 0 for s in SELECTIONS),
            say,
        )
    return result


run = run_scenario  # the registry's entry point: ``run(spec, state_dir, say)``
