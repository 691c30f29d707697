"""The nftables data plane's I/O: running ``nft -f``, reading interfaces and routes, sysctls.

Every command can run inside a network namespace (``prefix`` ``ip netns exec NS``), so
that tests and the lab program a namespace of their own and never the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence

from seaway.dataplane.nftables.rules import HostFacts

COMMAND_SECONDS = 60.0  # a full sync of 10,000 Services takes seconds; anything longer is stuck


class NftablesUnavailable(RuntimeError):
    """The kernel path cannot run here; the message says why in a user's words."""


class NftError(RuntimeError):
    """``nft`` refused a script; the message holds its error output."""


def why_unavailable() -> str:
    """Why ``--dataplane nftables`` cannot run here, or "" when it can."""
    if os.geteuid() != 0:
        return (
            "the nftables data plane programs the kernel and needs root (CAP_NET_ADMIN): "
            "run seaway as root, or use --dataplane proxy"
        )
    for tool in ("nft", "ip"):
        if shutil.which(tool) is None:
            return (
                f"the nftables data plane needs `{tool}` "
                "(Debian: apt-get install nftables iproute2)"
            )
    return ""


def _run(prefix: Sequence[str], args: Sequence[str], stdin: str | None = None) -> str:
    result = subprocess.run(
        [*prefix, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=COMMAND_SECONDS,
    )
    if result.returncode != 0:
        raise NftError(f"{' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def run_nft(prefix: Sequence[str], script: str) -> None:
    """Apply ``script`` as one transaction (all of it or nothing); raise NftError."""
    _run(prefix, ["nft", "-f", "-"], stdin=script)


def check_nft(prefix: Sequence[str], script: str) -> None:
    """Check ``script`` without applying it (``nft -c``); raise NftError."""
    _run(prefix, ["nft", "-c", "-f", "-"], stdin=script)


def list_table(prefix: Sequence[str], family: str, name: str) -> str:
    """``nft list table``: the table as the kernel holds it, with counters."""
    return _run(prefix, ["nft", "list", "table", family, name])


# nft loads the whole ruleset to list counters: seconds at 10,000 Services.
COUNTERS_SECONDS = COMMAND_SECONDS


def list_counters(prefix: Sequence[str]) -> str:
    """``nft -j list counters``: every named counter of every table, as JSON."""
    result = subprocess.run(
        [*prefix, "nft", "-j", "list", "counters"],
        capture_output=True,
        text=True,
        check=False,
        timeout=COUNTERS_SECONDS,
    )
    if result.returncode != 0:
        raise NftError(f"nft -j list counters: {result.stderr.strip() or result.returncode}")
    return result.stdout


def host_facts(prefix: Sequence[str], next_hops: Iterable[str]) -> HostFacts:
    """The interfaces that are up (but loopback) and the interface to each next hop."""
    links = json.loads(_run(prefix, ["ip", "-j", "link", "show", "up"]) or "[]")
    devices = tuple(
        sorted(
            str(link["ifname"])
            for link in links
            if "LOOPBACK" not in link.get("flags", ()) and link.get("ifname")
        )
    )
    routes: dict[str, str] = {}
    for address in sorted(set(next_hops)):
        try:
            found = json.loads(_run(prefix, ["ip", "-j", "route", "get", address]) or "[]")
        except NftError:
            continue  # no route: the rules leave this node out and say so
        if found and found[0].get("dev") and found[0].get("type", "unicast") == "unicast":
            device = str(found[0]["dev"])
            if device != "lo":
                routes[address] = device
    return HostFacts(devices, routes)


def read_sysctl(prefix: Sequence[str], name: str) -> str:
    return _run(prefix, ["sysctl", "-n", name]).strip()


def write_sysctl(prefix: Sequence[str], name: str, value: str) -> None:
    _run(prefix, ["sysctl", "-qw", f"{name}={value}"])
