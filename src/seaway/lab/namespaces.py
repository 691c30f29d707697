"""Network namespaces of the lab, created and removed with iproute2's ``ip``.

Every namespace is named ``seaway-lab-...`` so that a leftover of a killed run is
found by name (``ip netns list``) and removed with its processes (``ip netns pids``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

PREFIX = "seaway-lab-"
NETNS_DIR = "/run/netns"


class LabCommandError(RuntimeError):
    """A command the lab ran failed; the message holds the command and its stderr."""


def ip_available() -> str:
    """Why namespaces cannot be used here, or "" when they can (root, ``ip`` and ``nft``)."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces and nftables): run it with sudo"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the lab needs `{tool}` (Debian: apt-get install iproute2 nftables)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return ""


def run(args: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run ``args`` and return stdout; raise LabCommandError naming it when it fails."""
    result = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, check=False, timeout=30
    )
    if check and result.returncode != 0:
        raise LabCommandError(f"{' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def namespace_names() -> list[str]:
    """Every network namespace whose name starts with the lab's prefix."""
    out = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(PREFIX))


def namespace_pids(namespace: str) -> list[int]:
    """Processes whose network namespace is ``namespace``."""
    out = run(["ip", "netns", "pids", namespace], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def create_namespace(namespace: str) -> None:
    """Create ``namespace`` with its loopback up (and nothing else)."""
    if not namespace.startswith(PREFIX):
        raise ValueError(f"lab namespaces are named {PREFIX}...: {namespace}")
    run(["ip", "netns", "add", namespace])
    run(["ip", "-n", namespace, "link", "set", "lo", "up"])


def delete_namespace(namespace: str, *, grace: float = 2.0) -> list[int]:
    """Stop every process in ``namespace`` (SIGTERM, SIGKILL after ``grace``), remove it.

    Removing the namespace removes its interfaces (a veth pair goes when either end
    does), its routes and its nftables tables. Returns the pids that were stopped.
    """
    pids = namespace_pids(namespace)
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    _signal_all(pids, signal.SIGKILL)
    stopped = namespace_pids(namespace)
    _signal_all(stopped, signal.SIGKILL)
    run(["ip", "netns", "delete", namespace], check=False)
    return pids


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def exec_in(namespace: str, *args: str) -> list[str]:
    """The command line running ``args`` inside ``namespace``."""
    return ["ip", "netns", "exec", namespace, *args]
