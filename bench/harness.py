"""``python -m bench``: seaway, HAProxy and nginx side by side, in the same run.

Installs what is missing (as root, from Debian packages), starts the backend nginx,
then for every round and scenario starts each contender afresh in turn (A B C A B C:
machine drift hits all alike), drives the scenario's load, reads CPU time and memory
from /proc and stops the contender. Prints a markdown table of medians across rounds
with the ratios of seaway to each peer, and writes it with every sample as JSON.

Exit status: 0 when every contender produced numbers in every scenario it was asked
for (a scenario a contender does not offer, such as HTTP/2, is skipped with a note),
1 when one failed, 2 when a required program is missing.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from bench import contenders as ct
from bench.report import markdown, plot, summarize, write_json
from bench.scenarios import SCENARIOS, Context, Sample, Settings, Skipped
from bench.tools import ensure_tools, machine

CONTENDERS = ("seaway", "haproxy", "nginx")
DEFAULT_OUTPUT = Path("bench/results/bench.json")


def _say(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="seaway against HAProxy and nginx, side by side."
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short round (a smoke run, < 3 min)"
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=sorted(SCENARIOS),
        default=None,
        metavar="NAME",
        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=[*CONTENDERS, "baseline", "floor", "floor-parse", "direct"],
        default=None,
        help="contenders (default: seaway haproxy nginx, plus direct = the backend alone "
        "as a reference in the full run; floor, floor-parse: a bare Python byte relay, "
        "bench/floor_proxy.py)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick: 1)")
    parser.add_argument(
        "--idle-connections", type=int, default=None, help="default 10000; quick: 1000"
    )
    parser.add_argument("--backend-workers", type=int, default=1, help="backend nginx workers")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another seaway checkout (e.g. a git worktree of main), run as the contender "
        "'baseline': a change measured against the code before it, in the same run",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results")
    parser.add_argument("--plots", type=Path, default=None, help="write PNG plots into this folder")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (configs, logs)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the work folder is made (default: /tmp)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (2.0 if quick else 10.0)
    args.rounds = args.rounds or (1 if quick else 3)
    args.idle_connections = args.idle_connections or (1000 if quick else 10_000)
    args.scenarios = args.scenarios or list(SCENARIOS)
    args.contenders = args.contenders or ([*CONTENDERS] if quick else [*CONTENDERS, "direct"])
    if "baseline" in args.contenders and args.baseline is None:
        parser.error("the baseline contender needs --baseline PATH")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> tuple[list[Sample], dict[str, Any]]:
    """Every round, scenario and contender; the samples and what describes the run."""
    tools = ensure_tools(_say, install=not args.no_install)
    if tools.missing():
        raise SystemExit(2) from RuntimeError(f"missing: {' '.join(tools.missing())}")
    nofile = ct.nofile_limit()
    settings = Settings(
        duration=args.duration,
        warmup=0.5 if args.quick else 1.0,
        idle_connections=args.idle_connections,
        # Two descriptors per connection in the proxy, and some to spare (HAProxy's
        # maxconn is nofile // 2 - 100).
        idle_limit=max(100, nofile // 2 - 200),
    )
    meta: dict[str, Any] = {
        "machine": machine(),
        "versions": tools.versions,
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "settings": {
            "duration": settings.duration,
            "warmup": settings.warmup,
            "rounds": args.rounds,
            "keepalive_connections": settings.keepalive_connections,
            "close_connections": settings.close_connections,
            "idle_connections": settings.idle_connections,
            "idle_limit": settings.idle_limit,
            "nofile": nofile,
            "backend_workers": args.backend_workers,
        },
        "notes": [],
    }
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="seaway-bench-", dir=args.workdir))
    group = ct.ProcessGroup()
    samples: list[Sample] = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        backend = ct.start_backend(
            group, str(tools.paths["nginx"]), workdir, workers=args.backend_workers, nofile=nofile
        )
        ctx = Context(tools, backend, settings)
        starters: dict[str, Callable[[], ct.Running]] = {
            "seaway": lambda: ct.start_seaway(group, backend, workdir),
            "haproxy": lambda: ct.start_haproxy(
                group, str(tools.paths["haproxy"]), backend, workdir, nofile=nofile
            ),
            "nginx": lambda: ct.start_nginx_proxy(
                group,
                str(tools.paths["nginx"]),
                tools.stream_module or Path(),
                backend,
                workdir,
                nofile=nofile,
            ),
            "baseline": lambda: ct.start_seaway(group, backend, workdir, source=args.baseline),
            "floor": lambda: ct.start_floor(group, backend, workdir),
            "floor-parse": lambda: ct.start_floor(group, backend, workdir, parse=True),
            "direct": lambda: ct.direct(backend),
        }
        for round_number in range(1, args.rounds + 1):
            for name in args.scenarios:
                scenario = SCENARIOS[name]
                for contender in args.contenders:
                    if contender == "direct" and not scenario.reference:
                        continue
                    sample = _run_one(
                        ctx,
                        scenario=scenario.name,
                        contender=contender,
                        round_number=round_number,
                        starters=starters,
                        group=group,
                    )
                    samples.append(sample)
                    _say(_line(sample, scenario.unit))
    finally:
        group.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if args.keep:
            _say(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta["seconds"] = round(time.monotonic() - started, 1)
    return samples, meta


def _run_one(
    ctx: Context,
    *,
    scenario: str,
    contender: str,
    round_number: int,
    starters: dict[str, Callable[[], ct.Running]],
    group: ct.ProcessGroup,
) -> Sample:
    sample = Sample(scenario, contender, round_number)
    running: ct.Running | None = None
    try:
        running = starters[contender]()
        SCENARIOS[scenario].runner(ctx, running, sample)
    except Skipped as exc:
        sample.status, sample.note = "skipped", str(exc)
    except Exception as exc:  # a contender or a load generator failed: report, go on
        sample.status, sample.note = "failed", f"{type(exc).__name__}: {exc}"[:600]
    finally:
        if running is not None and contender != "direct":
            group.stop(running.proc)
    return sample


def _line(sample: Sample, unit: str) -> str:
    where = f"round {sample.round} {sample.scenario:<13} {sample.contender:<8}"
    if sample.status != "ok":
        return f"{where} {sample.status}: {sample.note}"
    parts = [f"{sample.rate:,.1f} {unit}"]
    if sample.p99_ms is not None:
        parts.append(f"p50 {sample.p50_ms:.2f} ms p99 {sample.p99_ms:.2f} ms")
    if sample.cpu_us_per_op is not None:
        parts.append(f"cpu {sample.cpu_us_per_op:.1f} us/op")
    if sample.backend_cpu is not None:
        parts.append(f"backend cpu {sample.backend_cpu:.2f}")
    if sample.errors:
        parts.append(f"{sample.errors} errors")
    return f"{where} " + ", ".join(parts)


def failures(samples: Sequence[Sample]) -> list[Sample]:
    """Runs in which a contender failed or produced no numbers (skips excluded)."""
    return [s for s in samples if s.status == "failed" or (s.status == "ok" and s.rate is None)]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        samples, meta = run(args)
    except KeyboardInterrupt:
        _say("interrupted: every process started was stopped")
        return 130
    summary = summarize(samples)
    seaway_h2 = [s for s in samples if s.scenario == "h2" and s.contender == "seaway"]
    if seaway_h2 and all(s.status == "skipped" for s in seaway_h2):
        meta["notes"].append(f"h2 skipped for seaway: {seaway_h2[0].note}")
    write_json(args.output, meta, samples)
    table = markdown(summary)
    args.output.with_suffix(".md").write_text(table)
    _say("")
    _say(table)
    _say(f"results: {args.output} and {args.output.with_suffix('.md')} ({meta['seconds']} s)")
    if args.plots is not None:
        for path in plot(summary, args.plots):
            _say(f"plot: {path}")
    failed = failures(samples)
    for sample in failed:
        _say(f"FAILED: {sample.scenario} {sample.contender} round {sample.round}: {sample.note}")
    return 1 if failed else 0
