"""Starting `seaway run` with extra flags (access logs, admin tokens) for these tests."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from seaway.testing.processes import PYTHON, Processes, SeawayProcess, free_port, wait_until


def start_seaway_with(
    processes: Processes, tmp_path: Path, manifest: Path, *extra: str
) -> SeawayProcess:
    """`seaway run -f manifest` plus ``extra`` flags; returns once /readyz answers 200."""
    admin = f"127.0.0.1:{free_port()}"
    log = tmp_path / f"seaway-{len(processes.procs)}.log"
    args = [PYTHON, "-m", "seaway", "run", "--admin", admin]
    args += ["--state-file", str(tmp_path / "addresses.json"), "-f", str(manifest)]
    # No shutdown delay: teardown stops seaway with SIGTERM.
    args += ["--shutdown-delay", "0", *extra]
    proc = processes.start(*args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    sp = SeawayProcess(proc, admin, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"seaway exited {proc.returncode}:\n{sp.logs()}")
        with urllib.request.urlopen(f"http://{admin}/readyz", timeout=1) as r:
            return bool(r.status == 200)

    wait_until(ready, timeout=15)
    return sp
