"""The ``seaway`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import queue
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
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


def run_async(
    main: Coroutine[Any, Any, int],
    *,
    on_stop: Callable[[], None] | None = None,
    on_reload: Callable[[], None] | None = None,
) -> int:
    """Run ``main`` on uvloop (when available); SIGTERM and Ctrl-C stop it cleanly.

    With ``on_stop``, the first SIGTERM or SIGINT calls it (a graceful shutdown that
    ends ``main``) and a second one cancels ``main`` at once. ``on_reload`` is called
    on SIGHUP.
    """

    async def wrapper() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        signals_seen = 0

        def stop() -> None:
            nonlocal signals_seen
            signals_seen += 1
            if on_stop is None or signals_seen > 1:
                task.cancel()
            else:
                on_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        if on_reload is not None:
            loop.add_signal_handler(signal.SIGHUP, on_reload)
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
    from seaway.accesslog import AccessLogSpec  # noqa: PLC0415
    from seaway.admin.auth import AdminAuthError  # noqa: PLC0415
    from seaway.admin.server import AdminAddressError  # noqa: PLC0415
    from seaway.app import Seaway  # noqa: PLC0415  (keeps `seaway --help` fast)
    from seaway.model.errors import InvalidConfiguration  # noqa: PLC0415

    apps: list[Seaway] = []
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 1
    if args.workers > 1 and args.worker_index is None:
        return _supervise_workers(args)
    shared_state = None
    if args.worker_index is not None:
        from seaway.shared_state import SharedStateError, attach_worker  # noqa: PLC0415
        from seaway.workers import die_with_parent, share_listeners  # noqa: PLC0415

        share_listeners()
        die_with_parent()
        logging.getLogger("seaway").info(
            "worker %d (pid %d): listeners bound with SO_REUSEPORT", args.worker_index, os.getpid()
        )
        if args.shared_state:
            try:
                shared_state = attach_worker(args.shared_state, args.worker_index)
            except SharedStateError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
    if args.dataplane == "nftables":
        from seaway.dataplane.nftables.host import why_unavailable  # noqa: PLC0415

        why = why_unavailable()
        if why:
            print(f"error: {why}", file=sys.stderr)
            return 1

    async def main() -> int:
        app = Seaway(
            args.file,
            admin_address=args.admin,
            state_file=Path(args.state_file) if args.state_file else None,
            shutdown_delay=args.shutdown_delay,
            admin_token_file=args.admin_token_file,
            access_log=(
                AccessLogSpec(args.access_log, args.access_log_format) if args.access_log else None
            ),
            dataplane=args.dataplane,
            shared_state=shared_state,
        )
        apps.append(app)
        try:
            await app.run()
        except InvalidConfiguration as exc:
            for error in exc.errors:
                print(f"error: {error}", file=sys.stderr)
            print("seaway did not start: fix the errors above", file=sys.stderr)
            return 1
        except (AdminAddressError, AdminAuthError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            print("seaway did not start: fix the admin API settings above", file=sys.stderr)
            return 1
        return 0

    def stop() -> None:
        for app in apps:
            app.request_shutdown()

    def reload() -> None:
        for app in apps:
            app.request_reload()

    return run_async(main(), on_stop=stop, on_reload=reload)


def _supervise_workers(args: argparse.Namespace) -> int:
    """``seaway run --workers N`` (N > 1): validate once, then run N workers."""
    from seaway.admin.auth import AdminAuthError, read_token_file  # noqa: PLC0415
    from seaway.core.config import join_host_port  # noqa: PLC0415
    from seaway.http1.address import parse_host_port  # noqa: PLC0415
    from seaway.model.errors import InvalidConfiguration  # noqa: PLC0415
    from seaway.shared_state import SharedRegion  # noqa: PLC0415
    from seaway.sources.files import load_paths  # noqa: PLC0415
    from seaway.workers import Supervisor, worker_admin_address, worker_argv  # noqa: PLC0415

    if args.dataplane != "proxy":
        print(
            "error: --workers needs --dataplane proxy (the kernel already uses every core)",
            file=sys.stderr,
        )
        return 1
    try:
        state = load_paths(args.file)
    except InvalidConfiguration as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print("seaway did not start: fix the errors above", file=sys.stderr)
        return 1
    try:
        host, port = parse_host_port(args.admin or state.settings.admin_address)
        admins = [join_host_port(*worker_admin_address(host, port, i)) for i in range(args.workers)]
        token_file = args.admin_token_file or state.settings.admin_token_file
        if token_file:
            read_token_file(token_file)
    except (ValueError, AdminAuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("seaway did not start: fix the admin API settings above", file=sys.stderr)
        return 1
    logging.getLogger("seaway").info(
        "starting %d workers; admin APIs on %s", args.workers, ", ".join(admins)
    )
    # Connection counts and ClientIP affinity, shared by the workers; the file is
    # removed when the supervisor returns or raises.
    try:
        shared = SharedRegion.create(args.workers)
    except OSError as exc:
        print(f"error: cannot create the workers' shared state: {exc}", file=sys.stderr)
        return 1
    with shared:
        supervisor = Supervisor(
            lambda i: worker_argv(args, i, admins[i], shared_state=str(shared.path)),
            args.workers,
            on_exit=shared.clear_row,
        )
        return supervisor.run()


def cmd_node_agent(args: argparse.Namespace) -> int:
    from seaway.health.agent import NodeAgent, run_node_agent  # noqa: PLC0415

    agent = NodeAgent(
        args.file,
        node=args.node,
        healthz_address=args.healthz_address,
        address=args.address,
        health_timeout=args.health_timeout,
    )
    return run_async(run_node_agent(agent))


def cmd_validate(args: argparse.Namespace) -> int:
    from seaway.core.health_timeline import timeline_warnings  # noqa: PLC0415
    from seaway.model.errors import InvalidConfiguration  # noqa: PLC0415
    from seaway.sources.files import load_paths  # noqa: PLC0415

    try:
        state = load_paths(args.file)
    except InvalidConfiguration as exc:
        for error in exc.errors:
            print(f"error: {error}")
        print(f"{len(exc.errors)} error(s)")
        return 1
    # Warnings do not fail validation: the manifests would load and serve.
    warnings = timeline_warnings(state)
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"valid, {len(warnings)} warning(s)" if warnings else "valid")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from seaway.admin.auth import AdminAuthError  # noqa: PLC0415
    from seaway.admin.client import fetch_state  # noqa: PLC0415
    from seaway.admin.tables import render_status  # noqa: PLC0415

    try:
        state = fetch_state(args.admin, token=_admin_token(args))
    except (OSError, AdminAuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(state, indent=2))
    else:
        print(render_status(state))
    return 0


def _admin_token(args: argparse.Namespace) -> str | None:
    from seaway.admin.auth import read_token_file  # noqa: PLC0415

    return read_token_file(args.admin_token_file) if args.admin_token_file else None


def cmd_top(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from seaway.admin.auth import AdminAuthError  # noqa: PLC0415
    from seaway.admin.client import fetch_state  # noqa: PLC0415
    from seaway.admin.top import CLEAR_SCREEN, render_top  # noqa: PLC0415

    iterations = 1 if args.once else args.iterations
    clear = sys.stdout.isatty()
    try:
        token = _admin_token(args)
        previous = fetch_state(args.admin, token=token)
    except (OSError, AdminAuthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    taken = time.monotonic()
    frames = 0
    try:
        while iterations is None or frames < iterations:
            time.sleep(args.interval)
            try:
                current = fetch_state(args.admin, token=token)
            except OSError as exc:
                if iterations is not None:
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
                print(f"{CLEAR_SCREEN if clear else ''}error: {exc}; retrying", flush=True)
                continue
            now = time.monotonic()
            frame = render_top(previous, current, now - taken)
            print(f"{CLEAR_SCREEN if clear else ''}{frame}", flush=True)
            if not clear and (iterations is None or frames + 1 < iterations):
                print(flush=True)
            previous, taken = current, now
            frames += 1
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from seaway.admin.auth import AdminAuthError  # noqa: PLC0415
    from seaway.admin.client import fetch_state  # noqa: PLC0415
    from seaway.admin.explain import (  # noqa: PLC0415
        UnknownService,
        find_service,
        render_explain,
    )

    try:
        state = fetch_state(args.admin, token=_admin_token(args))
        print(render_explain(state, args.service))
        svc = find_service(state, args.service)
        rules = (state.get("kernelRules") or {}).get(f"{svc.get('namespace')}/{svc.get('name')}")
        if rules:
            print(
                "\nKernel rules (nftables data plane; `nft list table ip seaway` shows "
                "them with counters):"
            )
            print(rules)
    except (OSError, AdminAuthError, UnknownService) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, UnknownService) else exc}", file=sys.stderr)
        return 1
    return 0


def cmd_backend(args: argparse.Namespace) -> int:
    from seaway.backend.server import run_backend_command  # noqa: PLC0415

    return run_backend_command(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from seaway.demo import run_demo  # noqa: PLC0415

    return run_async(run_demo(duration=args.duration, traffic=args.traffic, admin=args.admin))


def cmd_lab(args: argparse.Namespace) -> int:
    from seaway.lab.command import run_lab_command  # noqa: PLC0415

    return run_lab_command(args)


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
    run.add_argument(
        "--shutdown-delay",
        type=float,
        metavar="SECONDS",
        help="after SIGTERM, keep accepting this long with /readyz failing "
        "(default from SeawayConfig: 5)",
    )
    run.add_argument(
        "--admin-token-file",
        metavar="FILE",
        help="require Authorization: Bearer <the token in FILE> on the admin API "
        "(needed when --admin is not a loopback address)",
    )
    run.add_argument(
        "--access-log",
        metavar="PATH",
        help=(
            "write an access log line per connection and per HTTP request to PATH "
            '("-": standard output)'
        ),
    )
    run.add_argument(
        "--access-log-format",
        choices=["json", "text"],
        default="json",
        help="access log format: JSON lines (default) or text",
    )
    run.add_argument(
        "--dataplane",
        choices=["proxy", "nftables"],
        default="proxy",
        help="who serves LoadBalancer Services: seaway's L4 proxy (default) or the kernel "
        "through nftables (root; docs/kernel.md)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing the listeners (SO_REUSEPORT, Linux); "
        "worker I serves the admin API on its port + I (docs/operations.md)",
    )
    run.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    run.add_argument("--shared-state", help=argparse.SUPPRESS)  # path, from the supervisor
    run.set_defaults(func=cmd_run)

    agent = sub.add_parser("node-agent", help="a kube-proxy compatible health server for one node")
    agent.add_argument("-f", "--file", action="append", required=True, help="file or directory")
    agent.add_argument("--node", required=True, help="the name of the Node this agent is for")
    agent.add_argument(
        "--healthz-address",
        default="0.0.0.0:10256",
        metavar="HOST:PORT",
        help="where /healthz and /livez listen (kube-proxy's default: 0.0.0.0:10256)",
    )
    agent.add_argument(
        "--address",
        default="0.0.0.0",
        metavar="HOST",
        help="where the Services' health check node ports listen (default 0.0.0.0)",
    )
    agent.add_argument(
        "--health-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="/healthz fails once a change has waited this long to be applied "
        "(kube-proxy: 2 x its 30 s sync period)",
    )
    agent.set_defaults(func=cmd_node_agent)

    validate = sub.add_parser("validate", help="check manifests without serving")
    validate.add_argument("-f", "--file", action="append", required=True)
    validate.set_defaults(func=cmd_validate)

    status = sub.add_parser("status", help="show what a running seaway serves")
    status.add_argument("--admin", default="127.0.0.1:9980")
    status.add_argument("-o", "--output", choices=["table", "json"], default="table")
    status.add_argument("--admin-token-file", metavar="FILE", help="bearer token for the admin API")
    status.set_defaults(func=cmd_status)

    top = sub.add_parser("top", help="live traffic per backend (connections/s, active)")
    top.add_argument("--admin", default="127.0.0.1:9980")
    top.add_argument("--admin-token-file", metavar="FILE", help="bearer token for the admin API")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between frames")
    top.add_argument("--iterations", type=int, help="stop after N frames (default: until Ctrl-C)")
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    top.set_defaults(func=cmd_top)

    explain = sub.add_parser(
        "explain", help="which endpoints of a Service get traffic, and why not the others"
    )
    explain.add_argument("service", metavar="NAMESPACE/SERVICE")
    explain.add_argument("--admin", default="127.0.0.1:9980")
    explain.add_argument(
        "--admin-token-file", metavar="FILE", help="bearer token for the admin API"
    )
    explain.set_defaults(func=cmd_explain)

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

    from seaway.lab.command import add_lab_arguments  # noqa: PLC0415

    lab = sub.add_parser("lab", help="a cluster's data path in network namespaces (root)")
    add_lab_arguments(lab)
    lab.set_defaults(func=cmd_lab)

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
