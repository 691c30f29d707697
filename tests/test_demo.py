"""`seaway demo` runs on its embedded defaults and shows traffic per backend."""

from __future__ import annotations

import subprocess

from seaway.testing.processes import PYTHON, free_port


def test_demo_serves_and_shows_each_backend() -> None:
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "seaway",
            "demo",
            "--duration",
            "4",
            "--traffic",
            "20",
            "--admin",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert "curl http://127.240.0.1:8080/hostname" in text
    last_view = text.rsplit("seaway demo", 1)[-1]
    for pod in ("web-6d4f9-a1", "web-6d4f9-b2", "web-6d4f9-c3"):
        line = next(ln for ln in last_view.splitlines() if pod in ln)
        connections = int(line.split("connections")[0].split()[-1])
        assert connections > 0, last_view
