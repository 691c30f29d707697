"""The benchmark harness in quick mode: every contender runs and produces numbers.

Numbers are never asserted here (they belong in docs/BENCHMARKS.md); only that the
harness starts seaway, HAProxy and nginx, drives one L4 and one L7 scenario through
each, reads /proc, writes its JSON and table, and stops every process it started.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench.tools import find_tools

ROOT = Path(__file__).resolve().parents[2]


def _missing() -> list[str]:
    return find_tools().missing()


pytestmark = pytest.mark.skipif(
    bool(_missing()) or shutil.which("wrk") is None,
    reason=f"the benchmark needs haproxy, nginx with its stream module, wrk: missing {_missing()}",
)


def _bench_processes(folder: Path) -> list[str]:
    """Command lines of running processes that use files in ``folder``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found


def test_quick_run_gives_numbers_for_every_contender(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    workdir = tmp_path / "work"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--no-install",
            "--duration",
            "1",
            "--scenarios",
            "l7-keepalive",
            "l4-short",
            "--output",
            str(output),
            "--workdir",
            str(workdir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(output.read_text())
    summary = data["summary"]
    assert set(summary) == {"l7-keepalive", "l4-short"}
    for scenario, by_contender in summary.items():
        assert set(by_contender) == {"seaway", "haproxy", "nginx"}, scenario
        for contender, entry in by_contender.items():
            where = f"{scenario}/{contender}"
            assert entry["status"] == "ok", (where, entry["notes"])
            assert entry["rate"] > 0, where
            assert entry["p99_ms"] > 0, where
            assert entry["cpu_us_per_op"] > 0, where
            assert entry["peak_rss_mib"] > 0, where
        for peer in ("haproxy", "nginx"):
            assert by_contender[peer]["ratio_rate"] > 0
    table = output.with_suffix(".md").read_text()
    assert "| l7-keepalive | seaway |" in table
    assert "| l4-short | haproxy |" in table
    # Every process the harness started is gone (each was given a configuration or a
    # manifest inside the work folder, which is removed at the end).
    assert not _bench_processes(workdir), "a benchmark process outlived the run"
    assert list(workdir.iterdir()) == []
