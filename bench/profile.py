"""Where seaway's time goes under load: py-spy samples of ``seaway run`` while wrk drives
a scenario through it, summarised as the functions with the most samples.

``python -m bench.profile [--scenario l7-keepalive] [--duration 10] [--svg profile.svg]``
needs py-spy (``pip install py-spy``) and the permission to attach to a process
(root, or ptrace allowed). It prints two tables, by own samples (the function itself
was running) and by total samples (the function or something it called).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import contenders as ct
from bench.load import run_h2load, run_wrk
from bench.tools import find_tools

_LINE = re.compile(r"^(.*) (\d+)$")


def summarize(raw: str, top: int = 25) -> str:
    """Own and total samples per function from py-spy's raw (collapsed stacks) output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        found = _LINE.match(line.strip())
        if found is None:
            continue
        count = int(found.group(2))
        frames = [_frame(f) for f in found.group(1).split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if samples == 0:
        return "no samples\n"
    lines = [f"{samples} samples", "", "| own % | function |", "|--:|---|"]
    lines += [f"| {100 * n / samples:.1f} | `{f}` |" for f, n in own.most_common(top)]
    lines += ["", "| total % | function |", "|--:|---|"]
    lines += [f"| {100 * n / samples:.1f} | `{f}` |" for f, n in total.most_common(top)]
    return "\n".join(lines) + "\n"


def _frame(frame: str) -> str:
    # "data_received (seaway/dataplane/http/downstream.py:123)" -> function and file.
    found = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame.strip())
    if found is None:
        return frame.strip()
    name, path = found.groups()
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _record_under_load(
    record: list[str], drive: Callable[[float], object], duration: float
) -> object:
    """Run the py-spy command ``record`` while ``drive(duration)`` loads seaway from a
    thread; the load's result (None if it did not finish)."""
    outcome: dict[str, object] = {}

    def load() -> None:
        outcome["load"] = drive(duration)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        subprocess.run(record, capture_output=True, timeout=duration + 30, check=True)
    finally:
        thread.join(duration + 30)
    return outcome.get("load")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--scenario",
        choices=["l7-keepalive", "l7-close", "l4-short", "h2"],
        default="l7-keepalive",
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--svg", type=Path, default=None, help="also write a flame graph")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    tools = find_tools()
    py_spy = shutil.which("py-spy")
    if tools.missing() or py_spy is None:
        parser.error(f"needs py-spy, nginx and wrk (missing: {tools.missing() or ['py-spy']})")
    nofile = ct.nofile_limit()
    group = ct.ProcessGroup()
    with tempfile.TemporaryDirectory(prefix="seaway-profile-") as folder:
        workdir = Path(folder)
        try:
            backend = ct.start_backend(
                group, str(tools.paths["nginx"]), workdir, workers=1, nofile=nofile
            )
            seaway = ct.start_seaway(group, backend, workdir)
            address = seaway.endpoints.l4 if args.scenario == "l4-short" else seaway.endpoints.l7
            url = f"http://{address[0]}:{address[1]}{ct.SMALL_PATH}"
            close = args.scenario != "l7-keepalive"
            connections = 64 if not close else 32
            wrk = str(tools.paths["wrk"])
            h2load = str(tools.paths["h2load"])

            def drive(duration: float) -> object:
                if args.scenario == "h2":  # as the h2 scenario of python -m bench
                    return run_h2load(h2load, url, duration=duration, clients=16, streams=10)
                return run_wrk(wrk, url, duration=duration, connections=connections, close=close)

            drive(1)  # warm up
            raw = workdir / "profile.txt"
            record = [
                py_spy,
                "record",
                "--nonblocking",
                "-r",
                str(args.rate),
                "-d",
                str(int(args.duration) - 1),
            ]
            record += ["--pid", str(seaway.pid)]
            outcome = _record_under_load(
                [*record, "-f", "raw", "-o", str(raw)], drive, args.duration
            )
            print(f"load: {outcome}")
            print(summarize(raw.read_text(), args.top))
            if args.svg is not None:
                _record_under_load([*record, "-o", str(args.svg)], drive, args.duration)
                print(f"flame graph: {args.svg}")
        finally:
            group.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
