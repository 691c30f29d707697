"""Disruption and balance study of seaway's balancing algorithms (re-runnable).

``python -m bench.balancing_study`` measures, with fixed seeds:

(a) the share of flows remapped when 1 of N backends is removed or added, for modulo
    hashing, ring hash (Envoy's defaults), Maglev (M = 251, 4099, 65537) and
    rendezvous hashing (implemented here only, as a comparison);
(b) the balance (largest share over mean share) of each hashing scheme;
(c) idle flows whose tracking entry expired: how many land on another backend under
    random, modulo and Maglev selection (with the real balancers and ``FlowTable``);
(d) one slow backend out of five, in a discrete-event simulation with Poisson arrivals:
    share of requests and latency percentiles for round-robin, least-request, peak-EWMA
    and others, driven through the real balancers (``pick``/``started``/``observe``/
    ``ended``).

It rewrites the generated blocks of docs/balancing.md (between ``<!-- study:NAME -->``
and ``<!-- /study:NAME -->``) and the plots in docs/img/. Needs the ``bench`` extra
(matplotlib, numpy). ``--quick`` runs a reduced version (for a smoke check).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xxhash

from seaway.core.balancers.base import Balancer
from seaway.core.balancers.ipvs_hash_table import build_bucket_table
from seaway.core.balancers.maglev import MaglevBalancer, build_maglev_table
from seaway.core.balancers.random_choice import RandomBalancer
from seaway.core.balancers.registry import make_balancer
from seaway.core.balancers.ring_hash import build_ring
from seaway.core.config import Backend
from seaway.core.flows import FlowTable
from seaway.core.hashing import flow_hash

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "balancing.md"
IMG = ROOT / "docs" / "img"
SEED = 20240601
MAGLEV_SIZES = (251, 4099, 65537)
U64 = np.uint64

# ---------------------------------------------------------------------------------------
# Keys, flows and the hashing schemes, vectorised over flow hashes.


def backend_keys(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct pod-like keys ``10.a.b.c:8080``."""
    keys: set[str] = set()
    while len(keys) < count:
        keys.add(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}:8080")
    return sorted(keys)


def flow_hashes(count: int, rng: random.Random) -> np.ndarray:
    """Real seaway flow hashes of random TCP 5-tuples towards one VIP."""
    values = [
        flow_hash(
            "TCP",
            f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            rng.randrange(1024, 65536),
            "127.240.0.1",
            443,
        )
        for _ in range(count)
    ]
    return np.array(values, dtype=U64)


Mapper = Callable[[Sequence[str], np.ndarray], np.ndarray]


def map_modulo(keys: Sequence[str], hashes: np.ndarray) -> np.ndarray:
    """``sorted(keys)[hash % N]``: HAProxy's map-based hashing, nginx ``hash`` without
    ``consistent``; the index returned is into ``keys``."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return np.array(order)[hashes % U64(len(keys))]


def map_ring(keys: Sequence[str], hashes: np.ndarray) -> np.ndarray:
    ring_hashes, owners = build_ring([(k, 1) for k in keys])
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    ring = np.array(ring_hashes, dtype=U64)
    position = np.searchsorted(ring, hashes, side="left") % len(ring)
    picked: np.ndarray = np.array(order)[np.array(owners)[position]]
    return picked


def maglev_mapper(size: int) -> Mapper:
    def map_maglev(keys: Sequence[str], hashes: np.ndarray) -> np.ndarray:
        order = sorted(range(len(keys)), key=lambda i: keys[i])
        table = np.array(build_maglev_table([(keys[i], 1) for i in order], size))
        picked: np.ndarray = np.array(order)[table[hashes % U64(size)]]
        return picked

    return map_maglev


def map_sh(keys: Sequence[str], hashes: np.ndarray) -> np.ndarray:
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    hosts = [Backend(*_split(keys[i])) for i in order]
    position = {b.key: i for i, b in enumerate(hosts)}
    table = np.array([position[b.key] for b in build_bucket_table(hosts, weighted=True)])
    picked: np.ndarray = np.array(order)[table[hashes & U64(0xFF)]]
    return picked


def _split(key: str) -> tuple[str, int]:
    host, port = key.rsplit(":", 1)
    return host, int(port)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-mixed 64-bit hash (wrapping arithmetic)."""
    z = x + U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


def key_hash(key: str) -> int:
    return int(xxhash.xxh64_intdigest(key.encode(), 0))


def rendezvous_scores(keys: Sequence[str], hashes: np.ndarray) -> np.ndarray:
    """Highest-random-weight scores, one column per key (flows x keys)."""
    columns = np.array([key_hash(k) for k in keys], dtype=U64)
    return _mix64(hashes[:, None] ^ columns[None, :])


def map_rendezvous(keys: Sequence[str], hashes: np.ndarray) -> np.ndarray:
    result = np.empty(len(hashes), dtype=np.int64)
    chunk = max(1, 2_000_000 // max(1, len(keys)))
    for start in range(0, len(hashes), chunk):
        part = hashes[start : start + chunk]
        result[start : start + chunk] = np.argmax(rendezvous_scores(keys, part), axis=1)
    return result


SCHEMES: dict[str, Mapper] = {
    "modulo": map_modulo,
    "ring hash (1024)": map_ring,
    **{f"Maglev M={m}": maglev_mapper(m) for m in MAGLEV_SIZES},
    "rendezvous": map_rendezvous,
    "IPVS sh (256 buckets)": map_sh,
}


# ---------------------------------------------------------------------------------------
# (a) Disruption.


@dataclass
class Disruption:
    scheme: str
    backends: int
    removed: float  # mean share of flows remapped when one backend is removed
    added: float  # ... when one is added


def study_disruption(
    sizes: Sequence[int], flows: np.ndarray, trials: int, rng: random.Random
) -> list[Disruption]:
    results = []
    for n in sizes:
        universe = backend_keys(n + trials, rng)
        base = universe[:n]
        extra = universe[n:]
        removals = rng.sample(range(n), min(trials, n))
        for name, mapper in SCHEMES.items():
            owner = np.array(base)[mapper(base, flows)]
            removed = []
            added = []
            for r in removals:
                rest = base[:r] + base[r + 1 :]
                removed.append(float(np.mean(np.array(rest)[mapper(rest, flows)] != owner)))
            for new in extra:
                grown = [*base, new]
                added.append(float(np.mean(np.array(grown)[mapper(grown, flows)] != owner)))
            results.append(Disruption(name, n, float(np.mean(removed)), float(np.mean(added))))
    return results


# ---------------------------------------------------------------------------------------
# (b) Balance.


@dataclass
class Balance:
    scheme: str
    backends: int
    max_over_mean: float
    empty: int  # backends that get nothing


def _balance(shares: np.ndarray, n: int) -> tuple[float, int]:
    counts = np.zeros(n)
    counts[: len(shares)] = shares
    return float(counts.max() / counts.mean()), int(np.sum(counts == 0))


def study_balance(sizes: Sequence[int], flows: np.ndarray, rng: random.Random) -> list[Balance]:
    results = []
    for n in sizes:
        keys = backend_keys(n, rng)
        # Exact shares where the structure gives them.
        modulo = np.array([(2**64 - 1 - i) // n + 1 for i in range(n)], dtype=float)
        results.append(Balance("modulo", n, *_balance(modulo, n)))
        ring_hashes, owners = build_ring([(k, 1) for k in keys])
        ring = np.array(ring_hashes, dtype=float)
        arcs = np.diff(np.concatenate(([ring[-1] - 2.0**64], ring)))
        shares = np.bincount(np.array(owners), weights=arcs, minlength=n)
        results.append(Balance("ring hash (1024)", n, *_balance(shares, n)))
        for m in MAGLEV_SIZES:
            table = build_maglev_table([(k, 1) for k in keys], m)
            entries = np.bincount(np.array(table), minlength=n).astype(float)
            results.append(Balance(f"Maglev M={m}", n, *_balance(entries, n)))
        sh = build_bucket_table([Backend(*_split(k)) for k in keys], weighted=True)
        sh_counts = Counter(b.key for b in sh)
        results.append(
            Balance("IPVS sh (256 buckets)", n, *_balance(np.array(list(sh_counts.values())), n))
        )
        # Per-flow counts: these carry multinomial noise; "random" is that noise alone.
        rendezvous = np.bincount(map_rendezvous(keys, flows), minlength=n).astype(float)
        results.append(Balance("rendezvous (flows)", n, *_balance(rendezvous, n)))
        noise = np.bincount(
            np.array([rng.randrange(n) for _ in range(len(flows))]), minlength=n
        ).astype(float)
        results.append(Balance("random (flows)", n, *_balance(noise, n)))
    return results


# ---------------------------------------------------------------------------------------
# (c) Idle flows whose tracking entry expired.


class ModuloBalancer(Balancer):
    """``hash % N`` over the backends sorted by key (a comparison, not a seaway algorithm)."""

    name = "modulo"
    consistent = True

    def __init__(self, backends: Sequence[Backend]) -> None:
        self._hosts: list[Backend] = []
        self.update(backends)

    def update(self, backends: Sequence[Backend]) -> None:
        self._hosts = sorted(backends, key=lambda b: b.key)

    def pick(
        self, flow_hash: int, avoid: Set[Backend] = frozenset(), *, now: float | None = None
    ) -> Backend | None:
        return self._hosts[flow_hash % len(self._hosts)] if self._hosts else None


def _idle_balancers(backends: Sequence[Backend], seed: int) -> dict[str, Balancer]:
    return {
        "random": RandomBalancer(backends, rng=random.Random(seed)),
        "modulo": ModuloBalancer(backends),
        "Maglev M=65537": MaglevBalancer(backends),
    }


@dataclass
class IdleResult:
    scheme: str
    backends: int
    scale_up: float  # share of re-picked flows on another backend after +1
    scale_down: float  # ... after -1, among flows whose backend is still there


def study_idle(sizes: Sequence[int], flows: np.ndarray, rng: random.Random) -> list[IdleResult]:
    hashes = [int(h) for h in flows]
    results = []
    for n in sizes:
        keys = backend_keys(n + 1, rng)
        base = [Backend(*_split(k)) for k in keys[:n]]
        grown = [Backend(*_split(k)) for k in keys]
        gone = base[rng.randrange(n)]
        shrunk = [b for b in base if b != gone]
        for name, balancer in _idle_balancers(base, rng.randrange(2**32)).items():
            first = [balancer.pick(h) for h in hashes]
            balancer.update(grown)
            up = sum(balancer.pick(h) != f for h, f in zip(hashes, first, strict=True))
            balancer.update(shrunk)
            survivors = [(h, f) for h, f in zip(hashes, first, strict=True) if f != gone]
            down = sum(balancer.pick(h) != f for h, f in survivors)
            results.append(IdleResult(name, n, up / len(hashes), down / len(survivors)))
    return results


@dataclass
class FlowTableResult:
    scheme: str
    expired: float  # share of flows whose entry expired before their next packet
    moved: float  # share of all flows whose next packet went to another backend


def study_flow_table(flow_count: int, rng: random.Random) -> list[FlowTableResult]:
    """UDP flows through a real FlowTable (idle timeout 30 s, seaway's default).

    Each flow sends a packet at a uniform time in [0, 60) s, then another after an
    exponential idle gap (mean 45 s). At t = 60 s one backend is added to the ten.
    """
    idle_timeout = 30.0
    keys = backend_keys(11, rng)
    base = [Backend(*_split(k)) for k in keys[:10]]
    grown = [Backend(*_split(k)) for k in keys]
    flows = []
    for i in range(flow_count):
        start = rng.uniform(0.0, 60.0)
        gap = rng.expovariate(1 / 45.0)
        h = flow_hash("UDP", f"198.18.{i // 250}.{i % 250 + 1}", 40000 + i % 20000, "127.0.0.1", 53)
        flows.append((start, start + gap, i, h))
    events = sorted(
        [(t0, 0, i, h) for t0, _t1, i, h in flows] + [(t1, 1, i, h) for _t0, t1, i, h in flows]
    )
    results = []
    for name, balancer in _idle_balancers(base, rng.randrange(2**32)).items():
        table: FlowTable[int, Backend] = FlowTable(flow_count * 2, idle_timeout)
        scaled = False
        original: dict[int, Backend] = {}
        expired = moved = 0
        for when, kind, flow, h in events:
            if not scaled and when >= 60.0:
                balancer.update(grown)
                scaled = True
            backend = table.get(flow, when)
            if backend is None:
                if kind == 1:
                    expired += 1
                chosen = balancer.pick(h, now=when)
                assert chosen is not None
                backend = chosen
                table.put(flow, backend, when)
            if kind == 0:
                original[flow] = backend
            elif backend != original[flow]:
                moved += 1
        results.append(FlowTableResult(name, expired / flow_count, moved / flow_count))
    return results


# ---------------------------------------------------------------------------------------
# (d) One slow backend out of five: a discrete-event simulation.

SLOW_FACTOR = 4.0  # the slow backend's service time is 4 times the others'
MEAN_SERVICE = 0.010  # seconds
WORKERS = 4  # requests each backend serves at once; the rest wait in its FIFO queue
DES_ALGORITHMS = ("random", "round-robin", "lc", "least-request", "peak-ewma")


@dataclass
class SlowResult:
    algorithm: str
    load: float
    slow_share: float
    mean: float
    p50: float
    p99: float
    p999: float


def simulate(algorithm: str, load: float, requests: int, seed: int) -> SlowResult:
    backends = [Backend(f"10.0.0.{i + 1}", 8080) for i in range(5)]
    slow = backends[0]
    means = {b: MEAN_SERVICE * (SLOW_FACTOR if b == slow else 1.0) for b in backends}
    capacity = sum(WORKERS / m for m in means.values())
    rate = load * capacity
    workload = random.Random(seed)  # the same arrivals and work for every algorithm
    arrivals = []
    t = 0.0
    for _ in range(requests):
        t += workload.expovariate(rate)
        arrivals.append((t, workload.expovariate(1.0)))
    balancer = make_balancer(algorithm, backends, rng=random.Random(seed + 1))
    busy = dict.fromkeys(backends, 0)
    queues: dict[Backend, list[tuple[float, float]]] = {b: [] for b in backends}
    queue_heads = dict.fromkeys(backends, 0)
    done: list[tuple[float, int, Backend, float]] = []  # (finish, seq, backend, arrival)
    latencies = []
    chosen_count: Counter[Backend] = Counter()
    seq = 0

    def start(backend: Backend, arrived: float, work: float, now: float) -> None:
        nonlocal seq
        busy[backend] += 1
        seq += 1
        heapq.heappush(done, (now + work * means[backend], seq, backend, arrived))

    def finish_until(limit: float) -> None:
        while done and done[0][0] <= limit:
            now, _, backend, arrived = heapq.heappop(done)
            latency = now - arrived
            latencies.append(latency)
            balancer.observe(backend, latency, now)
            balancer.ended(backend)
            busy[backend] -= 1
            queue = queues[backend]
            head = queue_heads[backend]
            if head < len(queue):
                queue_heads[backend] = head + 1
                waiting_since, work = queue[head]
                start(backend, waiting_since, work, now)

    for arrived, work in arrivals:
        finish_until(arrived)
        backend = balancer.pick(0, now=arrived)
        assert backend is not None
        chosen_count[backend] += 1
        balancer.started(backend)
        if busy[backend] < WORKERS:
            start(backend, arrived, work, arrived)
        else:
            queues[backend].append((arrived, work))
    finish_until(math.inf)
    values = np.array(latencies)
    return SlowResult(
        algorithm,
        load,
        chosen_count[slow] / requests,
        float(values.mean()),
        float(np.percentile(values, 50)),
        float(np.percentile(values, 99)),
        float(np.percentile(values, 99.9)),
    )


# ---------------------------------------------------------------------------------------
# Output.


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block ``<!-- study:name -->...<!-- /study:name -->`` replaced
    (appended at the end when absent)."""
    begin, end = f"<!-- study:{name} -->", f"<!-- /study:{name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _m: block, text)
    return text.rstrip() + "\n\n" + block + "\n"


def write_blocks(path: Path, blocks: dict[str, str]) -> None:
    text = path.read_text() if path.exists() else "# Balancing\n"
    for name, body in blocks.items():
        text = replace_block(text, name, body)
    path.write_text(text)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %" if x < 0.1 else f"{100 * x:.1f} %"


def _ms(x: float) -> str:
    return f"{1000 * x:,.1f}"


def table_disruption(results: list[Disruption], sizes: Sequence[int], which: str) -> str:
    header = "| scheme | " + " | ".join(f"N={n}" for n in sizes) + " |"
    lines = [header, "|---" * (len(sizes) + 1) + "|"]
    ideal = [1 / n if which == "removed" else 1 / (n + 1) for n in sizes]
    lines.append("| ideal | " + " | ".join(_pct(x) for x in ideal) + " |")
    for scheme in SCHEMES:
        values = {r.backends: getattr(r, which) for r in results if r.scheme == scheme}
        lines.append(f"| {scheme} | " + " | ".join(_pct(values[n]) for n in sizes) + " |")
    return "\n".join(lines)


def table_balance(results: list[Balance], sizes: Sequence[int]) -> str:
    lines = [
        "| scheme | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
    ]
    for scheme in dict.fromkeys(r.scheme for r in results):
        cells = []
        for n in sizes:
            r = next(x for x in results if x.scheme == scheme and x.backends == n)
            cells.append(f"{r.max_over_mean:.3f}" + (f" ({r.empty} empty)" if r.empty else ""))
        lines.append(f"| {scheme} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_idle(results: list[IdleResult], sizes: Sequence[int]) -> str:
    lines = [
        "| selection | event | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "|---|---" + "|---" * len(sizes) + "|",
    ]
    for scheme in dict.fromkeys(r.scheme for r in results):
        for event, attr in (("+1 backend", "scale_up"), ("-1 backend", "scale_down")):
            rows = {r.backends: r for r in results if r.scheme == scheme}
            cells = [_pct(getattr(rows[n], attr)) for n in sizes]
            lines.append(f"| {scheme} | {event} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_flow_table(results: list[FlowTableResult]) -> str:
    lines = [
        "| selection | entries expired before the next packet | next packet on another backend |",
        "|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.scheme} | {_pct(r.expired)} | {_pct(r.moved)} |")
    return "\n".join(lines)


def table_slow(results: list[SlowResult]) -> str:
    lines = [
        "| load | algorithm | slow backend's share | mean ms | p50 ms | p99 ms | p99.9 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.load:.0%} | {r.algorithm} | {_pct(r.slow_share)} | {_ms(r.mean)} | "
            f"{_ms(r.p50)} | {_ms(r.p99)} | {_ms(r.p999)} |"
        )
    return "\n".join(lines)


def plot_disruption(results: list[Disruption], sizes: Sequence[int], img: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, which, title in (
        (axes[0], "removed", "one backend removed"),
        (axes[1], "added", "one backend added"),
    ):
        ideal = [1 / n if which == "removed" else 1 / (n + 1) for n in sizes]
        ax.plot(sizes, ideal, "k--", label="ideal")
        for scheme in SCHEMES:
            values = [
                next(getattr(r, which) for r in results if r.scheme == scheme and r.backends == n)
                for n in sizes
            ]
            # A log axis cannot show 0 (a backend that got no Maglev slot): leave a gap.
            shown = [v if v > 0 else float("nan") for v in values]
            ax.plot(sizes, shown, marker="o", markersize=3, label=scheme)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("backends N")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("share of flows remapped")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "balancing-disruption.png", dpi=110)
    plt.close(fig)


def plot_balance(results: list[Balance], sizes: Sequence[int], img: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for scheme in dict.fromkeys(r.scheme for r in results):
        values = [
            next(r.max_over_mean for r in results if r.scheme == scheme and r.backends == n)
            for n in sizes
        ]
        ax.plot(sizes, values, marker="o", markersize=3, label=scheme)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("backends N")
    ax.set_ylabel("max / mean share")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "balancing-balance.png", dpi=110)
    plt.close(fig)


def plot_slow(results: list[SlowResult], img: Path) -> None:
    loads = sorted({r.load for r in results})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for algorithm in DES_ALGORITHMS:
        rows = [next(r for r in results if r.algorithm == algorithm and r.load == x) for x in loads]
        axes[0].plot(loads, [r.slow_share for r in rows], marker="o", label=algorithm)
        axes[1].plot(loads, [1000 * r.p99 for r in rows], marker="o", label=algorithm)
    axes[0].axhline(0.2, color="k", linestyle=":", label="even share (20 %)")
    slow_capacity = 1 / (1 + 4 * SLOW_FACTOR)
    axes[0].axhline(slow_capacity, color="gray", linestyle="--", label="its capacity share")
    axes[0].set_ylabel("share of requests on the slow backend")
    axes[1].set_ylabel("p99 latency (ms)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("offered load (share of total capacity)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "balancing-slow-backend.png", dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run (smoke check)")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--img", type=Path, default=IMG)
    args = parser.parse_args(argv)
    rng = random.Random(SEED)
    if args.quick:
        sizes, flow_count, trials, requests = [3, 10, 100], 20_000, 2, 20_000
        idle_sizes, loads = [3, 10], [0.5]
    else:
        sizes, flow_count, trials, requests = (
            [3, 5, 10, 20, 50, 100, 200, 500, 1000],
            100_000,
            8,
            200_000,
        )
        idle_sizes, loads = [3, 10, 30, 100], [0.25, 0.5, 0.8]
    started = time.perf_counter()
    flows = flow_hashes(flow_count, rng)
    disruption = study_disruption(sizes, flows, trials, rng)
    print(f"(a) disruption: {time.perf_counter() - started:.1f} s", flush=True)
    balance = study_balance(sizes, flows, rng)
    print(f"(b) balance: {time.perf_counter() - started:.1f} s", flush=True)
    idle = study_idle(idle_sizes, flows[: flow_count // 2], rng)
    flow_table = study_flow_table(flow_count // 5, rng)
    print(f"(c) idle flows: {time.perf_counter() - started:.1f} s", flush=True)
    slow = [
        simulate(algorithm, load, requests, SEED) for load in loads for algorithm in DES_ALGORITHMS
    ]
    print(f"(d) slow backend: {time.perf_counter() - started:.1f} s", flush=True)

    args.img.mkdir(parents=True, exist_ok=True)
    plot_disruption(disruption, sizes, args.img)
    plot_balance(balance, sizes, args.img)
    plot_slow(slow, args.img)
    write_blocks(
        args.doc,
        {
            "disruption-removed": table_disruption(disruption, sizes, "removed"),
            "disruption-added": table_disruption(disruption, sizes, "added"),
            "balance": table_balance(balance, sizes),
            "idle": table_idle(idle, idle_sizes),
            "flow-table": table_flow_table(flow_table),
            "slow-backend": table_slow(slow),
            "parameters": (
                f"Run: {flow_count:,} flows, {trials} removals and {trials} additions per N, "
                f"{requests:,} requests per simulation, seed {SEED}; "
                f"{time.perf_counter() - started:.0f} s on this machine."
            ),
        },
    )
    print(f"wrote {args.doc} and plots in {args.img}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
