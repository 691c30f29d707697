"""The test backend's listeners and its command: ``seaway backend``.

TCP ``HOST:PORT``: an optional PROXY header, then HTTP/1.1 when the first bytes are
a request line, raw echo otherwise. UDP on the same port: datagram echo. On SIGTERM
the backend can keep serving for a delay with ``/readyz`` failing, as a Pod with a
preStop sleep does (agnhost netexec ``--delay-shutdown``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable

from seaway.backend.echo import TCPEchoProtocol, UDPEchoProtocol
from seaway.backend.endpoints import backend_handler
from seaway.backend.proxy_header import ProxyHeaderReader
from seaway.backend.state import BackendState
from seaway.http1 import (
    ConnectionSet,
    HTTPServerProtocol,
    Limits,
    format_sockname,
    parse_host_port,
)

logger = logging.getLogger(__name__)

BACKEND_HEADER = "X-Seaway-Backend"
# When port 0 is asked for, the kernel picks a free TCP port; the same number may be
# taken on UDP, so a few other picks are tried.
_PICK_ATTEMPTS = 20


class BackendServer:
    """One test backend: a TCP listener and, on the same port, a UDP socket.

    Owns both and every connection accepted; :meth:`close` ends them all.
    """

    def __init__(
        self, name: str, *, ready: bool = True, udp: bool = True, limits: Limits | None = None
    ) -> None:
        self.state = BackendState(name, ready_flag=ready)
        self._udp_wanted = udp
        self._limits = limits or Limits()
        self._handler = backend_handler(self.state)
        self._extra_headers = ((BACKEND_HEADER, name),)
        self._connections = ConnectionSet()
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    async def start(self, listen: str) -> None:
        """Listen on ``listen`` (``host:port`` or ``[v6]:port``; port 0: any free one).

        Raises ValueError for a malformed address, OSError naming it when it cannot
        be bound.
        """
        host, port = parse_host_port(listen)
        loop = asyncio.get_running_loop()
        attempts = _PICK_ATTEMPTS if port == 0 and self._udp_wanted else 1
        for attempt in range(attempts):
            try:
                tcp = await loop.create_server(self._new_connection, host, port, reuse_address=True)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"cannot listen on {listen} (TCP): {exc.strerror or exc}"
                ) from exc
            if not self._udp_wanted:
                self._tcp = tcp
                return
            bound_host, bound_port = tcp.sockets[0].getsockname()[:2]
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: UDPEchoProtocol(self.state.name), local_addr=(bound_host, bound_port)
                )
            except OSError as exc:
                tcp.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await tcp.wait_closed()
                if attempt == attempts - 1:
                    raise OSError(
                        exc.errno, f"cannot listen on {listen} (UDP): {exc.strerror or exc}"
                    ) from exc
                continue
            self._tcp, self._udp = tcp, udp
            return

    def _new_connection(self) -> asyncio.Protocol:
        return ProxyHeaderReader(self._after_proxy_header, self._connections)

    def _after_proxy_header(self, client: tuple[str, int] | None) -> asyncio.Protocol:
        return HTTPServerProtocol(
            self._handler,
            limits=self._limits,
            connections=self._connections,
            not_http=lambda: TCPEchoProtocol(self._connections),
            client=client,
            extra_headers=self._extra_headers,
        )

    @property
    def tcp_address(self) -> str:
        """``host:port`` of the TCP listener (the real port when 0 was asked)."""
        if self._tcp is None or not self._tcp.sockets:
            raise RuntimeError("the backend is not listening")
        return format_sockname(self._tcp.sockets[0])

    @property
    def udp_address(self) -> str | None:
        """``host:port`` of the UDP socket, or None without UDP."""
        if self._udp is None:
            return None
        sock = self._udp.get_extra_info("socket")
        return format_sockname(sock) if sock is not None else None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def close(self, grace: float = 1.0) -> None:
        """Stop listening; give open connections ``grace`` s to finish, then cut them."""
        tcp, self._tcp = self._tcp, None
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()
        if tcp is not None:
            tcp.close()
        await self._connections.close_all(grace)
        if tcp is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await tcp.wait_closed()


async def serve_backend(
    listen: str,
    name: str,
    *,
    delay_shutdown: float = 0.0,
    udp: bool = True,
    ready: bool = True,
) -> None:
    """Run a test backend until SIGTERM/SIGINT or cancellation.

    On the first SIGTERM or SIGINT with ``delay_shutdown`` > 0 the backend keeps
    serving for that many seconds with ``/readyz`` answering 503, then stops; a
    second signal stops it at once. Signals are handled only when nobody else in
    the process handles SIGTERM (``seaway demo`` runs backends in its own process
    and stops them by cancellation).
    """
    server = BackendServer(name, ready=ready, udp=udp)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    delayed: list[asyncio.TimerHandle] = []

    def on_signal() -> None:
        if server.state.terminating or delay_shutdown <= 0:
            stop.set()
            return
        server.state.terminating = True
        logger.info("backend %s: terminating in %.1f s, not ready meanwhile", name, delay_shutdown)
        delayed.append(loop.call_later(delay_shutdown, stop.set))

    # Handlers first: once the port answers, a SIGTERM must already mean "stop cleanly".
    signals = _handle_signals(loop, on_signal)
    try:
        await server.start(listen)
        logger.info(
            "backend %s: HTTP and TCP echo on %s, UDP echo on %s",
            name,
            server.tcp_address,
            server.udp_address or "(off)",
        )
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        for handle in delayed:
            handle.cancel()
        await server.close()
    logger.info("backend %s: stopped", name)


def _handle_signals(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> list[signal.Signals]:
    """Install ``callback`` for SIGTERM and SIGINT if they are ours to take; return those set."""
    if threading.current_thread() is not threading.main_thread():
        return []
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return []  # someone else in this process stops us (by cancelling)
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError):  # e.g. Windows' Proactor loop
            break
        installed.append(sig)
    return installed


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``seaway backend`` (also ``python -m seaway.backend``)."""
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="TCP and UDP address, HOST:PORT or [IPv6]:PORT (default 127.0.0.1:8080)",
    )
    parser.add_argument(
        "--name",
        default=socket.gethostname(),
        help="what /hostname and the UDP 'hostname' datagram answer (default: the host name)",
    )
    parser.add_argument(
        "--delay-shutdown",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM keep serving this long with /readyz failing, then exit",
    )
    parser.add_argument("--no-udp", action="store_true", help="do not open the UDP echo")
    parser.add_argument(
        "--not-ready", action="store_true", help="start with /readyz failing (POST /readyz/ok)"
    )


def run_backend_command(args: argparse.Namespace) -> int:
    """Run ``seaway backend`` with parsed ``args``; the exit status."""
    coroutine = serve_backend(
        args.listen,
        args.name,
        delay_shutdown=args.delay_shutdown,
        udp=not args.no_udp,
        ready=not args.not_ready,
    )
    try:
        import uvloop  # noqa: PLC0415  (optional: absent on some platforms)
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(coroutine)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
