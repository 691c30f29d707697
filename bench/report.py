"""Medians across rounds, the markdown table, the JSON file and the plots.

``python -m bench.report RESULT.json [--before OLD.json] --plots DIR`` redraws the plots
of a finished run (and seaway's before/after comparison) without running anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS, Sample

METRICS = ("rate", "p50_ms", "p99_ms", "mean_ms", "cpu_us_per_op", "peak_rss_mib", "backend_cpu")
PEERS = ("haproxy", "nginx", "baseline", "floor", "floor-parse")


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(samples: Sequence[Sample]) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario -> contender -> median of every metric over the rounds that produced it,
    plus ``rounds``, ``errors``, ``status`` and notes; ratios seaway/peer per scenario."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for sample in samples:
        summary.setdefault(sample.scenario, {}).setdefault(sample.contender, {"_samples": []})
        summary[sample.scenario][sample.contender]["_samples"].append(sample)
    for by_contender in summary.values():
        for entry in by_contender.values():
            group: list[Sample] = entry.pop("_samples")
            ok = [s for s in group if s.status == "ok"]
            for metric in METRICS:
                entry[metric] = _median([getattr(s, metric) for s in ok])
            entry["rounds"] = len(ok)
            entry["errors"] = sum(s.errors for s in ok)
            entry["status"] = "ok" if ok else group[0].status
            entry["notes"] = sorted({s.note for s in group if s.note})
            entry["values"] = [s.rate for s in ok]
    for by_contender in summary.values():
        seaway = by_contender.get("seaway")
        for peer in PEERS:
            theirs = by_contender.get(peer)
            if seaway is None or theirs is None:
                continue
            theirs["ratio_rate"] = _ratio(seaway.get("rate"), theirs.get("rate"))
            theirs["ratio_cpu"] = _ratio(seaway.get("cpu_us_per_op"), theirs.get("cpu_us_per_op"))
            theirs["ratio_p99"] = _ratio(seaway.get("p99_ms"), theirs.get("p99_ms"))
    return summary


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def markdown(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One table: a row per scenario and contender, medians, ratios of seaway to peers."""
    lines = [
        "| scenario | contender | result | p50 ms | p99 ms | CPU µs per op | peak RSS MiB "
        "| backend CPU | seaway ÷ peer (result) | seaway ÷ peer (CPU/op) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, by_contender in summary.items():
        scenario = SCENARIOS[name]
        for contender, entry in by_contender.items():
            if entry["status"] != "ok":
                note = "; ".join(entry["notes"]) or entry["status"]
                lines.append(f"| {name} | {contender} | {entry['status']}: {note} |||||||||")
                continue
            result = f"{_fmt(entry['rate'])} {scenario.unit}"
            p50 = _fmt(entry["p50_ms"], 2)
            if entry["p50_ms"] is None and entry["mean_ms"] is not None:
                p50 = f"{_fmt(entry['mean_ms'], 2)} (mean)"
            cpu = (
                f"{_fmt(entry['cpu_us_per_op'])} /{scenario.per}" if entry["cpu_us_per_op"] else "-"
            )
            backend = f"{entry['backend_cpu']:.2f}" if entry["backend_cpu"] is not None else "-"
            ratio_rate = _fmt(entry.get("ratio_rate"), 2)
            ratio_cpu = _fmt(entry.get("ratio_cpu"), 2)
            errors = f" ({entry['errors']} errors)" if entry["errors"] else ""
            lines.append(
                f"| {name} | {contender} | {result}{errors} | {p50} "
                f"| {_fmt(entry['p99_ms'], 2)} | {cpu} | {_fmt(entry['peak_rss_mib'])} "
                f"| {backend} | {ratio_rate} | {ratio_cpu} |"
            )
    return "\n".join(lines) + "\n"


def write_json(path: Path, meta: dict[str, Any], samples: Sequence[Sample]) -> None:
    summary = summarize(samples)
    data = {"meta": meta, "summary": summary, "samples": [asdict(s) for s in samples]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def load_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


# -- plots ---------------------------------------------------------------------------

COLORS = {"seaway": "#1f77b4", "haproxy": "#d62728", "nginx": "#2ca02c", "direct": "#7f7f7f"}


def plot(
    summary: dict[str, Any], folder: Path, *, before: dict[str, Any] | None = None
) -> list[Path]:
    """bench-throughput.png, bench-cpu.png, bench-latency.png, bench-memory.png (and
    bench-before-after.png when ``before`` is given): medians, relative to HAProxy."""
    import matplotlib  # noqa: PLC0415  (the bench extra; only needed for plots)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    contenders = ["seaway", "haproxy", "nginx"]
    load_scenarios = [n for n in summary if SCENARIOS[n].higher_is_better]
    idle_scenarios = [n for n in summary if not SCENARIOS[n].higher_is_better]

    def relative(metric: str, name: str, contender: str) -> float:
        entry = summary[name].get(contender, {})
        base = summary[name].get("haproxy", {}).get(metric)
        value = entry.get(metric)
        if value is None or not base:
            return 0.0
        return float(value) / float(base)

    for metric, filename, title in (
        ("rate", "bench-throughput.png", "Throughput relative to HAProxy (higher is better)"),
        (
            "cpu_us_per_op",
            "bench-cpu.png",
            "CPU time per request/connection/MB relative to HAProxy (lower is better)",
        ),
        ("p99_ms", "bench-latency.png", "p99 latency relative to HAProxy (lower is better)"),
    ):
        names = [
            n for n in load_scenarios if any(summary[n].get(c, {}).get(metric) for c in contenders)
        ]
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(9, 4.2))
        width = 0.8 / len(contenders)
        for i, contender in enumerate(contenders):
            xs = [j + (i - 1) * width for j in range(len(names))]
            ys = [relative(metric, n, contender) for n in names]
            bars = ax.bar(xs, ys, width, label=contender, color=COLORS[contender])
            for bar, n in zip(bars, names, strict=True):
                value = summary[n].get(contender, {}).get(metric)
                if value:
                    ax.annotate(
                        _fmt(value, 2 if metric == "p99_ms" else 1),
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if idle_scenarios:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        width = 0.8 / len(contenders)
        for i, contender in enumerate(contenders):
            xs = [j + (i - 1) * width for j in range(len(idle_scenarios))]
            ys = [summary[n].get(contender, {}).get("rate") or 0.0 for n in idle_scenarios]
            ax.bar(xs, ys, width, label=contender, color=COLORS[contender])
        ax.set_xticks(range(len(idle_scenarios)), idle_scenarios)
        ax.set_ylabel("KiB per idle connection")
        ax.set_title("Memory per idle connection (lower is better)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / "bench-memory.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if before is not None:
        names = [n for n in load_scenarios if before.get(n, {}).get("seaway", {}).get("rate")]
        if names:
            fig, axes = plt.subplots(1, 2, figsize=(10, 4))
            for ax, metric, label in (
                (axes[0], "rate", "seaway throughput ÷ HAProxy's"),
                (axes[1], "cpu_us_per_op", "seaway CPU per op ÷ HAProxy's"),
            ):
                width = 0.38
                for k, (data, tag) in enumerate(((before, "before"), (summary, "after"))):
                    ys = []
                    for n in names:
                        ours = data.get(n, {}).get("seaway", {}).get(metric)
                        theirs = data.get(n, {}).get("haproxy", {}).get(metric)
                        ys.append(ours / theirs if ours and theirs else 0.0)
                    xs = [j + (k - 0.5) * width for j in range(len(names))]
                    ax.bar(xs, ys, width, label=tag, color="#9ecae1" if k == 0 else "#1f77b4")
                ax.axhline(1.0, color="black", linewidth=0.6)
                ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
                ax.set_title(label, fontsize=10)
                ax.legend(fontsize=8)
            fig.tight_layout()
            path = folder / "bench-before-after.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("result", type=Path, help="a JSON file written by python -m bench")
    parser.add_argument(
        "--before", type=Path, help="an earlier run, for seaway's before/after plot"
    )
    parser.add_argument("--plots", type=Path, default=Path("docs/img"))
    args = parser.parse_args(argv)
    data = load_json(args.result)
    before = load_json(args.before)["summary"] if args.before else None
    print(markdown(data["summary"]))
    for path in plot(data["summary"], args.plots, before=before):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
