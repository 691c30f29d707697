"""`seaway debug maglev` prints the same table as build_maglev_table (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys

from seaway.core.balancers.maglev import build_maglev_table

KEYS = ["10.0.0.3:80", "10.0.0.1:80", "[fd00::2]:8080", "10.0.0.2:80"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seaway", "debug", "maglev", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_table_matches_build_maglev_table_with_weights() -> None:
    weights = {"10.0.0.1:80": 3, "[fd00::2]:8080": 2}
    result = run_cli(
        "--table-size",
        "17",
        *[arg for key, w in weights.items() for arg in ("--weight", f"{key}={w}")],
        *KEYS,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    expected = build_maglev_table([(k, weights.get(k, 1)) for k in sorted(KEYS)], 17)
    assert [int(x) for x in lines[-1].split()] == expected
    # The header names each backend in table order with its weight and entry count.
    headers = [line for line in lines if line.startswith("#")]
    assert headers == [
        f"# {i} {key} weight={weights.get(key, 1)} entries={expected.count(i)}"
        for i, key in enumerate(sorted(KEYS))
    ]
    # Weighted: the heaviest backend owns the most slots.
    heaviest = sorted(KEYS).index("10.0.0.1:80")
    assert expected.count(heaviest) == max(expected.count(i) for i in range(len(KEYS)))


def test_cli_rejects_a_table_size_that_is_not_prime() -> None:
    result = run_cli("--table-size", "16", "10.0.0.1:80")
    assert result.returncode == 2
    assert "prime" in result.stderr
