"""What a pick costs: ns per pick for every algorithm, Maglev build time, FlowTable memory.

``python -m bench.pick_cost`` measures with ``timeit`` (the median of several runs of
many picks each) and ``tracemalloc``, prints the results and rewrites the block
``<!-- study:pick-cost -->`` of docs/balancing.md. Numbers depend on the machine and
on what else runs on it; the medians damp, but do not remove, that noise.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.balancing_study import DOC, write_blocks
from seaway.core.balancers.maglev import MaglevBalancer, build_maglev_table
from seaway.core.balancers.registry import ALGORITHM_NAMES, make_balancer
from seaway.core.config import Backend
from seaway.core.flows import FlowTable
from seaway.core.hashing import flow_hash

REPEATS = 7
# The Maglev pick including the 5-tuple hash should stay under this (seaway's target).
MAGLEV_TARGET_NS = 1500.0


def median_ns(statement: Callable[[], object], number: int, repeats: int = REPEATS) -> float:
    """Median over ``repeats`` runs of the time per call, in nanoseconds."""
    timer = timeit.Timer(statement)
    runs = timer.repeat(repeat=repeats, number=number)
    return statistics.median(runs) / number * 1e9


def backends(count: int) -> list[Backend]:
    return [Backend(f"10.0.{i // 250}.{i % 250 + 1}", 8080) for i in range(count)]


def pick_costs(count: int, number: int) -> dict[str, float]:
    """ns per pick for every algorithm over ``count`` backends (load-aware ones with
    ``started``/``ended`` around the pick, as the proxy does)."""
    hashes = [random.Random(1).getrandbits(64) for _ in range(1024)]
    results = {}
    for name in sorted(ALGORITHM_NAMES):
        balancer = make_balancer(name, backends(count), rng=random.Random(7))
        for b in backends(count):  # some load and latency history
            balancer.started(b)
            balancer.observe(b, 0.01, 0.0)
        state = {"i": 0}

        def one_pick(balancer: object = balancer, state: dict[str, int] = state) -> object:
            i = state["i"] = (state["i"] + 1) & 1023
            return balancer.pick(hashes[i], now=1.0)  # type: ignore[attr-defined]

        results[name] = median_ns(one_pick, number)
    return results


def maglev_pick_with_hash(number: int) -> float:
    balancer = MaglevBalancer(backends(100))
    ports = list(range(1024, 1024 + 1024))
    state = {"i": 0}

    def one() -> object:
        i = state["i"] = (state["i"] + 1) & 1023
        return balancer.pick(flow_hash("TCP", "198.18.0.7", ports[i], "127.240.0.1", 443))

    return median_ns(one, number)


def maglev_build_seconds(count: int, size: int, repeats: int = 5) -> float:
    keys = [(b.key, 1) for b in backends(count)]
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        build_maglev_table(keys, size)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def flow_table_bytes(entries: int) -> tuple[float, float]:
    """Bytes per FlowTable entry: the table alone (keys and values exist anyway), and
    with a fresh ``(ip, port)`` key per flow (as the UDP proxy keys flows)."""
    value = Backend("10.0.0.1", 8080)
    keys = [(f"198.18.{i // 250 % 256}.{i % 250 + 1}", 1024 + i % 60000) for i in range(entries)]
    gc.collect()
    tracemalloc.start()
    table: FlowTable[tuple[str, int], Backend] = FlowTable(entries, 30.0)
    base = tracemalloc.get_traced_memory()[0]
    for i, key in enumerate(keys):
        table.put(key, value, float(i))
    table_only = (tracemalloc.get_traced_memory()[0] - base) / entries
    tracemalloc.stop()
    del table
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fresh: FlowTable[tuple[str, int], Backend] = FlowTable(entries, 30.0)
    for i in range(entries):
        fresh.put((f"198.18.{i // 250 % 256}.{i % 250 + 1}", 1024 + i % 60000), value, float(i))
    with_keys = (tracemalloc.get_traced_memory()[0] - base) / entries
    tracemalloc.stop()
    return table_only, with_keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer picks (smoke check)")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    number = 2_000 if args.quick else 20_000
    small = pick_costs(10, number)
    large = pick_costs(100, number // 4)
    with_hash = maglev_pick_with_hash(number)
    build = maglev_build_seconds(1000, 65537, repeats=3 if args.quick else 5)
    entries = 10_000 if args.quick else 100_000
    table_only, with_keys = flow_table_bytes(entries)

    lines = [
        "| algorithm | ns per pick, 10 backends | ns per pick, 100 backends |",
        "|---|---|---|",
    ]
    for name in sorted(small, key=lambda n: small[n]):
        lines.append(f"| {name} | {small[name]:,.0f} | {large[name]:,.0f} |")
    verdict = "meets" if with_hash < MAGLEV_TARGET_NS else "misses"
    lines += [
        "",
        f"- Maglev pick including `flow_hash` of the 5-tuple (100 backends): "
        f"**{with_hash:,.0f} ns** median ({verdict} the {MAGLEV_TARGET_NS:,.0f} ns target).",
        f"- Maglev table build, 1000 backends, M = 65537: **{build * 1000:,.0f} ms** median.",
        f"- FlowTable memory per entry ({entries:,} entries, tracemalloc): "
        f"**{table_only:,.0f} bytes** "
        f"for the table itself, **{with_keys:,.0f} bytes** counting a fresh `(ip, port)` key.",
        f"- Python {sys.version.split()[0]}; medians of {REPEATS} runs of {number:,} picks "
        f"({number // 4:,} at 100 backends).",
    ]
    body = "\n".join(lines)
    print(body)
    write_blocks(args.doc, {"pick-cost": body})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
