"""``seaway lab ...``: up, down, status, rollout and run, for users at a terminal.

``lab up`` stays in the foreground and owns the lab (Ctrl-C removes it); the other
commands talk to it through a Unix socket in the state directory, or clean up after
it (``lab down`` also removes what a killed ``lab up`` left).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from seaway.lab.lab import DEFAULT_STATE_DIR, Lab, LabError, host_leftovers, remove_leftovers
from seaway.lab.namespaces import LabCommandError, ip_available, namespace_names
from seaway.lab.spec import LabSpecError, load_lab

CONTROL_SOCKET = "control.sock"
CONTROL_SECONDS = 180.0


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``seaway lab`` subcommands."""
    parser.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        help=f"where the lab keeps its state, manifests and logs (default {DEFAULT_STATE_DIR})",
    )
    sub = parser.add_subparsers(dest="lab_command", required=True)
    up = sub.add_parser("up", help="build the lab and keep it up until Ctrl-C")
    up.add_argument("-f", "--file", help="LAB.yaml (default: the packaged default lab)")
    up.add_argument("--no-seaway", action="store_true", help="do not run seaway on the LB host")
    sub.add_parser("down", help="remove the lab (also what a killed run left)")
    sub.add_parser("status", help="what the lab is made of and the state of its pods")
    rollout = sub.add_parser("rollout", help="rolling update of a deployment of the running lab")
    rollout.add_argument("name")
    run = sub.add_parser("run", help="run a scenario in a lab of its own; exit 0 if it held")
    run.add_argument("scenario", nargs="?", help="a scenario name (see --list)")
    run.add_argument("-f", "--file", help="LAB.yaml (default: the packaged default lab)")
    run.add_argument("--list", action="store_true", help="list the scenarios")


def run_lab_command(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    command = args.lab_command
    if command == "run" and args.list:
        from seaway.lab.scenarios.registry import SCENARIOS  # noqa: PLC0415

        width = max(len(name) for name in SCENARIOS) + 2
        for name, (_, what) in SCENARIOS.items():
            print(f"{name:{width}} {what}")
        return 0
    why = ip_available()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 1
    try:
        if command == "up":
            return _run(_up(args, state_dir))
        if command == "down":
            return _down(state_dir)
        if command == "status":
            return _run(_status(state_dir))
        if command == "rollout":
            return _run(_control(state_dir, {"command": "rollout", "deployment": args.name}))
        return _run(_scenario(args, state_dir))
    except (LabSpecError, LabError, LabCommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main``; SIGINT and SIGTERM cancel it, so that its cleanup runs."""

    async def wrapper() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await main
        except asyncio.CancelledError:
            return 130

    return asyncio.run(wrapper())


def _say(text: str) -> None:
    print(text, flush=True)


async def _up(args: argparse.Namespace, state_dir: Path) -> int:
    spec = load_lab(args.file)
    async with Lab(spec, state_dir=state_dir, with_seaway=not args.no_seaway, say=_say) as lab:
        socket_path = state_dir / CONTROL_SOCKET
        server = await asyncio.start_unix_server(
            lambda r, w: _serve_control(lab, r, w), path=str(socket_path)
        )
        try:
            for line in lab.status_lines():
                _say(line)
            _say(
                "the lab is up; try: ip netns exec seaway-lab-client curl "
                f"http://{spec.services[0].load_balancer_ip}:{spec.services[0].port}/hostname"
                if spec.services
                else "the lab is up"
            )
            _say("Ctrl-C (or `seaway lab down`) removes it")
            await asyncio.Event().wait()
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
    return 0


async def _serve_control(
    lab: Lab, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        async with asyncio.timeout(5):
            request = json.loads(await reader.readline())
        if request.get("command") == "status":
            lines, ok = lab.status_lines(), True
        elif request.get("command") == "rollout":
            name = str(request.get("deployment"))
            if name not in lab.deployments.deployments:
                lines, ok = [f"no deployment named {name}"], False
            else:
                revision = await lab.deployments.rollout(name)
                lines = [f"deployment {name} rolled out: revision {revision} available"]
                lines += lab.status_lines()
                ok = True
        else:
            lines, ok = ["unknown command"], False
        for line in lines:
            writer.write((line + "\n").encode())
        writer.write(b"ok\n" if ok else b"error\n")
        async with asyncio.timeout(5):
            await writer.drain()
    except (OSError, ValueError, TimeoutError) as exc:
        with contextlib.suppress(OSError):
            writer.write(f"{exc}\nerror\n".encode())
    finally:
        writer.close()


async def _control(state_dir: Path, request: dict[str, str]) -> int:
    path = state_dir / CONTROL_SOCKET
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError):
        print(f"error: no lab is up (no {path}); start one with `seaway lab up`", file=sys.stderr)
        return 1
    try:
        writer.write((json.dumps(request) + "\n").encode())
        await writer.drain()
        async with asyncio.timeout(CONTROL_SECONDS):
            lines = (await reader.read()).decode().splitlines()
    finally:
        writer.close()
    status = lines.pop() if lines else "error"
    for line in lines:
        print(line)
    return 0 if status == "ok" else 1


async def _status(state_dir: Path) -> int:
    if (state_dir / CONTROL_SOCKET).exists():
        return await _control(state_dir, {"command": "status"})
    names = namespace_names()
    if names:
        print(
            "no `seaway lab up` is running, but these lab namespaces are left: "
            + ", ".join(names)
            + " (`seaway lab down` removes them)"
        )
        return 1
    print("no lab is up")
    return 0


def _down(state_dir: Path) -> int:
    removed = remove_leftovers(state_dir)
    print("removed: " + ", ".join(removed) if removed else "nothing to remove")
    left = host_leftovers()
    for item in left:
        print(f"error: still there: {item}", file=sys.stderr)
    return 1 if left else 0


async def _scenario(args: argparse.Namespace, state_dir: Path) -> int:
    from seaway.lab.scenarios.registry import SCENARIOS  # noqa: PLC0415

    if args.scenario not in SCENARIOS:
        print(
            f"error: unknown scenario {args.scenario!r}; one of: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    scenario, what = SCENARIOS[args.scenario]
    _say(f"scenario {args.scenario}: {what}")
    result = await scenario(load_lab(args.file), state_dir, _say)
    _say("")
    for note in result.notes:
        _say(f"note: {note}")
    if result.ok:
        _say(f"{args.scenario}: the outcome is the one promised")
        return 0
    _say(f"{args.scenario}: NOT as promised: " + "; ".join(result.failed_checks()))
    return 1
