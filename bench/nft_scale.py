"""Scale of the nftables data plane (a benchmark, not a test; root).

Builds a DesiredConfig of SERVICES LoadBalancer Services with ENDPOINTS endpoints each,
renders seaway's tables and measures, inside a fresh network namespace:

- the full sync: rendering (Python) and ``nft -f`` of the whole table;
- one endpoint change: rendering the difference and its ``nft -f`` (element updates);
- kernel memory: the growth of /proc/meminfo SUnreclaim (unreclaimable slab, where
  nf_tables keeps rules, maps and elements) across the full sync; the machine is
  shared, so the figure is approximate;
- the size of the script and of ``nft list table`` output.

    python -m bench.nft_scale --services 10000 --endpoints 10
"""

from __future__ import annotations

import argparse
import subprocess
import time
import uuid
from dataclasses import replace

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.dataplane.nftables.host import run_nft
from seaway.dataplane.nftables.model import render_transaction
from seaway.dataplane.nftables.rules import HostFacts, RulesetCache, build_ruleset


def _meminfo(field: str) -> int:
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def config_for(services: int, endpoints: int) -> DesiredConfig:
    sets: dict[str, BackendSet] = {}
    listeners: dict[str, Listener] = {}
    for i in range(services):
        backends = tuple(
            Backend(f"10.{(i >> 8) & 255}.{i & 255}.{j + 1}", 8080) for j in range(endpoints)
        )
        key = f"ns{i % 100}/svc{i}:80/TCP"
        sets[key] = BackendSet(
            key, f"ns{i % 100}/svc{i}", "http", "TCP", backends, candidates=backends
        )
        address = f"172.{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        listener = Listener("TCP", address, 80, f"ns{i % 100}/svc{i}", "http", key)
        listeners[listener.key] = listener
    return DesiredConfig(listeners=listeners, backend_sets=sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    args = parser.parse_args()
    namespace = f"seaway-nft-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    prefix = ("ip", "netns", "exec", namespace)
    try:
        config = config_for(args.services, args.endpoints)
        facts = HostFacts(("lo",), {})
        # The data plane keeps rendered rules per listener across changes; so does this.
        cache = RulesetCache()
        t0 = time.perf_counter()
        ruleset = build_ruleset(config, facts, cache=cache)
        script = render_transaction(None, ruleset.tables, "seaway")
        rendered = time.perf_counter() - t0
        slab_before = _meminfo("SUnreclaim")
        t0 = time.perf_counter()
        run_nft(prefix, script)
        applied = time.perf_counter() - t0
        slab_after = _meminfo("SUnreclaim")
        listed = subprocess.run(
            [*prefix, "nft", "list", "table", "ip", "seaway"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # One endpoint of one Service goes away.
        key = next(iter(config.backend_sets))
        changed = replace(config.backend_sets[key], backends=config.backend_sets[key].backends[1:])
        t0 = time.perf_counter()
        after = build_ruleset(
            replace(config, backend_sets={**config.backend_sets, key: changed}), facts, cache=cache
        )
        delta = render_transaction(ruleset.tables, after.tables, "seaway")
        delta_rendered = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_nft(prefix, delta)
        delta_applied = time.perf_counter() - t0
        elements = sum(len(o.elements) for o in ruleset.tables["ip"].objects.values())
        print(f"services {args.services} x endpoints {args.endpoints}: {elements} map elements")
        print(
            f"full sync: render {rendered:.2f} s, nft -f {applied:.2f} s, "
            f"script {len(script) / 1e6:.1f} MB, nft list {len(listed) / 1e6:.1f} MB"
        )
        print(f"kernel memory (SUnreclaim growth): {(slab_after - slab_before) / 2**20:.0f} MiB")
        print(
            f"one endpoint change: render {delta_rendered:.2f} s, nft -f "
            f"{delta_applied * 1000:.0f} ms, {len(delta.splitlines())} lines"
        )
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)


if __name__ == "__main__":
    main()
