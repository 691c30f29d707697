"""Sockets born inside a lab namespace, used from the caller's event loop.

A socket belongs to the network namespace of the thread that created it, for its
whole life. :class:`NamespaceThread` is one thread that entered a namespace with
``setns(2)``; sockets it creates are then used from the event loop like any other,
so one process can be the client, the load balancer's prober and the kubelet's
prober at once, without a subprocess per request.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from seaway.lab.namespaces import NETNS_DIR

CLONE_NEWNET = 0x40000000  # <sched.h>


def _enter(namespace: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(os.path.join(NETNS_DIR, namespace), os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({namespace}): {os.strerror(errno)}")
    finally:
        os.close(fd)


class NamespaceThread:
    """One worker thread inside ``namespace``; makes sockets there."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=namespace, initializer=_enter, initargs=(namespace,)
        )

    async def socket(self, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A non-blocking IPv4 socket in the namespace."""
        loop = asyncio.get_running_loop()
        sock = await loop.run_in_executor(self._executor, socket.socket, socket.AF_INET, kind)
        sock.setblocking(False)
        return sock

    async def open_connection(
        self, host: str, port: int, limit: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection from the namespace to ``host:port`` within ``limit`` s."""
        sock = await self.socket()
        try:
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(limit):
                await loop.sock_connect(sock, (host, port))
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
