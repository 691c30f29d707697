"""The programs the benchmark needs, installed from Debian packages when missing."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# program -> the Debian package that provides it.
PACKAGES = {
    "haproxy": "haproxy",
    "nginx": "nginx-light",
    "wrk": "wrk",
    "h2load": "nghttp2-client",
}
# nginx's stream module (the L4 peer) is a separate package on Debian.
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
STREAM_PACKAGE = "libnginx-mod-stream"
REQUIRED = ("haproxy", "nginx", "wrk")


@dataclass(frozen=True)
class Tools:
    """Paths of the programs found (None when missing) and their versions."""

    paths: dict[str, str | None]
    stream_module: Path | None
    versions: dict[str, str]

    def missing(self) -> list[str]:
        """Required programs (and the nginx stream module) that are not there."""
        gone = [name for name in REQUIRED if self.paths.get(name) is None]
        if self.stream_module is None:
            gone.append(STREAM_PACKAGE)
        return gone


def find_tools() -> Tools:
    """What is installed now, without installing anything."""
    paths = {name: shutil.which(name) or _sbin(name) for name in PACKAGES}
    stream = STREAM_MODULE if STREAM_MODULE.exists() else None
    return Tools(paths, stream, _versions(paths))


def _sbin(name: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder, name)
        if candidate.exists():
            return str(candidate)
    return None


def ensure_tools(say: Callable[[str], None], *, install: bool = True) -> Tools:
    """Install the missing Debian packages when root and apt-get exist; say what."""
    tools = find_tools()
    wanted = [PACKAGES[name] for name, path in tools.paths.items() if path is None]
    if tools.stream_module is None:
        wanted.append(STREAM_PACKAGE)
    if not wanted:
        return tools
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        say(f"missing and not installed (needs root and apt-get): {' '.join(wanted)}")
        return tools
    say(f"installing Debian packages: {' '.join(wanted)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *wanted]):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            say(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
            break
    return find_tools()


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _versions(paths: dict[str, str | None]) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    flags = {"haproxy": ["-v"], "nginx": ["-v"], "wrk": ["-v"], "h2load": ["--version"]}
    for name, path in paths.items():
        if path is not None:
            versions[name] = _first_line([path, *flags[name]])
    return versions


def machine() -> dict[str, str]:
    """The machine the numbers come from: CPUs, CPU model, kernel."""
    model = "unknown"
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        if found:
            model = found.group(1).strip()
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
