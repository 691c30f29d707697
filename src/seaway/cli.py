"""The ``seaway`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import logging.handlers
import queue
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from seaway import __version__


def setup_logging(level: str) -> logging.handlers.QueueListener:
    """Log through a queue so that the event loop never blocks on a slow terminal or disk."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = logging.handlers.QueueListener(records, handler)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level.upper())
    listener.start()
    return listener


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop (when available); SIGTERM and Ctrl-C stop it cleanly."""

    async def wrapper() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await main
        except asyncio.CancelledError:
            return 0

    try:
        import uvloop  # noqa: PLC0415  (optional: absent on some platforms)
    except ImportError:
        return asyncio.run(wrapper())
    return int(uvloop.run(wrapper()))


def cmd_run(args: argparse.Namespace) -> int:
    from seaway.app import Seaway  # noqa: PLC0415  (keeps `seaway --help` fast)
    from seaway.model.errors import InvalidConfiguration  # noqa: PLC0415

    async def main() -> int:
        app = Seaway(
            args.file,
            admin_address=args.admin,
            state_file=Path(args.state_file) if args.state_file else None,
        )
        try:
            await app.run()
        except InvalidConfiguration as exc:
            for error in exc.errors:
                print(f"error: {error}", file=sys.stderr)
            print("seaway did not start: fix the errors above", file=sys.stderr)
            return 1
        return 0

    return run_async(main())


def cmd_validate(args: argparse.Namespace) -> int:
    from seaway.sources.files import validate_paths  # noqa: PLC0415

    errors = validate_paths(args.file)
    for error in errors:
        print(f"error: {error}")
    if errors:
        print(f"{len(errors)} error(s)")
        return 1
    print("valid")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from seaway.admin.client import fetch_state  # noqa: PLC0415
    from seaway.admin.tables import render_status  # noqa: PLC0415

    try:
        state = fetch_state(args.admin)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(state, indent=2))
    else:
        print(render_status(state))
    return 0


def cmd_backend(args: argparse.Namespace) -> int:
    from seaway.backend.server import run_backend_command  # noqa: PLC0415

    return run_backend_command(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from seaway.demo import run_demo  # noqa: PLC0415

    return run_async(run_demo(duration=args.duration, traffic=args.traffic, admin=args.admin))


def cmd_debug_maglev(args: argparse.Namespace) -> int:
    from seaway.core.balancers.maglev import build_maglev_table  # noqa: PLC0415

    weights: dict[str, int] = {}
    for item in args.weight:
        key, sep, value = item.rpartition("=")
        if not sep or not value.isdigit():
            print(f"error: --weight takes KEY=WEIGHT, got {item!r}", file=sys.stderr)
            return 2
        weights[key] = int(value)
    keys = sorted(set(args.key))
    try:
        table = build_maglev_table([(k, weights.get(k, 1)) for k in keys], args.table_size)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for index, key in enumerate(keys):
        print(f"# {index} {key} weight={weights.get(key, 1)} entries={table.count(index)}")
    print(" ".join(str(i) for i in table))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from seaway.backend.server import add_backend_arguments  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="seaway", description="A load balancer for Kubernetes Services."
    )
    parser.add_argument("--version", action="version", version=f"seaway {__version__}")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve Services from manifest files")
    run.add_argument("-f", "--file", action="append", required=True, help="file or directory")
    run.add_argument(
        "--admin", help="admin API address (default from SeawayConfig: 127.0.0.1:9980)"
    )
    run.add_argument("--state-file", help="where assigned addresses are remembered")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check manifests without serving")
    validate.add_argument("-f", "--file", action="append", required=True)
    validate.set_defaults(func=cmd_validate)

    status = sub.add_parser("status", help="show what a running seaway serves")
    status.add_argument("--admin", default="127.0.0.1:9980")
    status.add_argument("-o", "--output", choices=["table", "json"], default="table")
    status.set_defaults(func=cmd_status)

    backend = sub.add_parser("backend", help="a test backend (HTTP, TCP and UDP echo)")
    add_backend_arguments(backend)
    backend.set_defaults(func=cmd_backend)

    demo = sub.add_parser("demo", help="three backends behind seaway on loopback")
    demo.add_argument("--duration", type=float, default=0.0, help="stop after N seconds")
    demo.add_argument(
        "--traffic", type=float, default=5.0, help="connections per second the demo makes itself"
    )
    demo.add_argument("--admin", default="127.0.0.1:9980")
    demo.set_defaults(func=cmd_demo)

    debug = sub.add_parser("debug", help="inspect seaway's algorithms")
    debug_sub = debug.add_subparsers(dest="debug_command", required=True)
    maglev = debug_sub.add_parser("maglev", help="print a Maglev lookup table")
    maglev.add_argument("--table-size", type=int, default=65537)
    maglev.add_argument("--weight", action="append", default=[], help="KEY=WEIGHT")
    maglev.add_argument("key", nargs="+", help="backend keys, e.g. 10.0.0.1:8080")
    maglev.set_defaults(func=cmd_debug_maglev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    listener = setup_logging(args.log_level)
    try:
        code = int(args.func(args))
    finally:
        with contextlib.suppress(Exception):
            listener.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
