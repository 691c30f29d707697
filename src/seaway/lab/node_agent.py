"""How to start ``seaway node-agent`` (kube-proxy's health server) on a lab node, if it exists.

The node agent comes from the health work; the lab asks ``seaway node-agent --help``
at ``up`` time and starts it on every node only when the options it needs are there.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

# kube-proxy's --healthz-bind-address port.
KUBE_PROXY_HEALTHZ_PORT = 10256

NodeAgentArgs = Callable[[str, str, str], list[str]]


def node_agent_command() -> tuple[NodeAgentArgs | None, str]:
    """A function (manifest dir, node name, node address) -> argv, or None and why not."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "seaway", "node-agent", "--help"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`seaway node-agent --help` failed: {exc}"
    if result.returncode != 0:
        return None, "this seaway has no `node-agent` command yet"
    help_text = result.stdout
    node_option = next((o for o in ("--node-name", "--node") if f"{o} " in help_text), None)
    if node_option is None or "--file" not in help_text:
        return None, "`seaway node-agent` does not take -f DIR and --node NAME"

    def args(manifests: str, node: str, address: str) -> list[str]:
        argv = [sys.executable, "-m", "seaway", "node-agent", "-f", manifests, node_option, node]
        if "--address " in help_text:
            argv += ["--address", address]
        if "--healthz-address " in help_text:
            argv += ["--healthz-address", f"{address}:{KUBE_PROXY_HEALTHZ_PORT}"]
        return argv

    return args, ""
