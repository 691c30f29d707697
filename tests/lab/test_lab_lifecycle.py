"""The lab removes everything it made: on down, on errors, and after a killed run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seaway.lab import topology
from seaway.lab.http_probe import http_get
from seaway.lab.lab import Lab, host_leftovers
from seaway.lab.namespaces import ip_available, namespace_names, namespace_pids
from seaway.lab.spec import load_lab

WHY_NOT = ip_available()
needs_namespaces = pytest.mark.skipif(
    bool(WHY_NOT), reason=f"lab tests need root, `ip netns` and nft: {WHY_NOT}"
)

SEAWAY = [sys.executable, "-m", "seaway"]


def test_refuses_without_root(tmp_path: Path) -> None:
    # As root, the command runs with the effective uid of nobody (after its imports,
    # which read files only root may read here); as anyone else, as is.
    code = (
        "import os, sys; import seaway.cli, seaway.lab.command; seaway.cli.build_parser();"
        "os.geteuid() == 0 and os.seteuid(65534);"
        f"sys.exit(seaway.cli.main(['lab', '--state-dir', {str(tmp_path)!r}, 'up']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "the lab needs root" in result.stderr
    assert not (tmp_path / "state.json").exists()


def test_scenario_list() -> None:
    result = subprocess.run([*SEAWAY, "lab", "run", "--list"], capture_output=True, text=True,
                            timeout=30, check=True)
    for name in ("packet-life", "rolling-update", "node-drain", "keepalive-spread",
                 "kernel-rolling-update", "kernel-vs-proxy"):
        assert name in result.stdout


@needs_namespaces
@pytest.mark.root
async def test_an_error_inside_the_lab_removes_it(lab_state_dir: Path) -> None:
    spec = load_lab(None)
    with pytest.raises(RuntimeError, match="the test failed"):
        async with Lab(spec, state_dir=lab_state_dir, with_seaway=False) as lab:
            answer = await http_get(lab.threads[topology.CLIENT], spec.nodes[0].address,
                                    spec.services[0].node_port, "/hostname", 2.0)
            assert answer.status == 200 and answer.backend.startswith("web-")
            assert len(namespace_names()) == 6 + 3  # client, router, lb, 3 nodes; 3 pods
            raise RuntimeError("the test failed")
    assert host_leftovers() == []


@needs_namespaces
@pytest.mark.root
def test_down_removes_what_a_killed_up_left(lab_state_dir: Path) -> None:
    log = lab_state_dir.parent / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [*SEAWAY, "lab", "--state-dir", str(lab_state_dir), "up", "--no-seaway"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while b"the lab is up" not in log.read_bytes():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        status = subprocess.run([*SEAWAY, "lab", "--state-dir", str(lab_state_dir), "status"],
                                capture_output=True, text=True, timeout=30, check=False)
        assert status.returncode == 0 and "pod web-r1-1" in status.stdout, status
        up.send_signal(signal.SIGKILL)  # no chance to clean up
        up.wait(10)
        left = namespace_names()
        assert topology.CLIENT in left
        assert any(namespace_pids(n) for n in left)  # the pods kept running
        down = subprocess.run([*SEAWAY, "lab", "--state-dir", str(lab_state_dir), "down"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert down.returncode == 0, down.stderr
        assert "seaway-lab-pod-web-r1-1" in down.stdout
        assert host_leftovers() == []
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
