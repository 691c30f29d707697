"""What seaway's kernel path (``ip seaway`` on the load balancer) holds, read with ``nft``.

Scenarios that run ``seaway run --dataplane nftables`` wait with these until seaway
programmed a Service, and count the flows the kernel DNATed for it.
"""

from __future__ import annotations

import asyncio
import re

from seaway.dataplane.nftables.rules import TABLE_NAME
from seaway.lab import topology
from seaway.lab.namespaces import run
from seaway.lab.spec import ServiceSpec

RULES_WAIT_SECONDS = 20.0


def listed_table() -> str:
    """``nft list table ip seaway`` in the load balancer's namespace ("" when absent)."""
    return run(
        ["ip", "netns", "exec", topology.LOAD_BALANCER, "nft", "list", "table", "ip", TABLE_NAME],
        check=False,
    )


def selection_map(listing: str, service: ServiceSpec) -> str | None:
    """The text of ``service``'s selection map in ``listing`` (None: not programmed)."""
    suffix = f"/default/{service.name}/{service.port}/tcp"
    match = re.search(rf"\n\s*map (\S+{re.escape(suffix)}) {{", listing)
    if match is None:
        return None
    end = listing.find("\n\t}", match.start())
    return listing[match.start() : end if end >= 0 else len(listing)]


def dnat_flows(listing: str, service: ServiceSpec) -> int:
    """New flows the kernel DNATed for ``service`` (the counter of its NAT chain: a nat
    chain sees only the first packet of each flow)."""
    chain = f"chain nat/{service.load_balancer_ip}/tcp/{service.port} {{"
    at = listing.find(chain)
    if at < 0:
        return 0
    end = listing.find("\n\t}", at)
    found = re.findall(r"counter packets (\d+) bytes \d+ dnat", listing[at:end])
    return sum(int(n) for n in found)


async def wait_for_backends(service: ServiceSpec, addresses: set[str]) -> None:
    """Wait until ``service``'s selection map names exactly the nodes ``addresses``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RULES_WAIT_SECONDS
    pattern = re.compile(r"(\d+\.\d+\.\d+\.\d+) \. \d+")
    while True:
        listing = await asyncio.to_thread(listed_table)
        elements = selection_map(listing, service)
        if elements is not None and set(pattern.findall(elements)) == addresses:
            return
        if loop.time() > deadline:
            raise TimeoutError(
                f"seaway did not program {service.name} with {', '.join(sorted(addresses))} in time"
            )
        await asyncio.sleep(0.1)
