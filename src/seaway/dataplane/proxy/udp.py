"""UDP proxying: one listening socket per listener, one connected socket per client flow.

A flow is a client (address, port); it holds a socket connected to the backend
chosen for its first datagram, kept in a bounded, idle-expiring ``FlowTable`` (the
user-space counterpart of conntrack's UDP entries). Replies from the backend go back
to the client from the listening socket, so the client sees the address it sent to.

No PROXY protocol on UDP: v2 can describe a datagram flow, but it is defined as a
header at the start of a connection, and a UDP flow has no start the backend could
recognise (each datagram would need its own header, which backends do not expect).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import cast

from seaway.accesslog import RESULT_OK, ConnectionRecord
from seaway.core.balancers.base import Balancer
from seaway.core.config import Backend, Listener
from seaway.core.flows import FlowTable
from seaway.dataplane.base import BackendCounters, ListenerCounters
from seaway.dataplane.proxy.runtime import ProxyRuntime
from seaway.dataplane.proxy.source_ranges import source_allowed
from seaway.workers import listeners_shared

# Largest UDP payload (65535 - 8-byte UDP header; IPv6 jumbograms aside).
MAX_DATAGRAM = 65535
# Replies queued on the listening socket beyond this are dropped, as a kernel
# drops datagrams when a socket's send buffer is full.
MAX_QUEUED_REPLY_BYTES = 1024 * 1024

ClientKey = tuple[str, int]


class UdpFlow:
    """One client's flow: a socket connected to its backend, read by the event loop."""

    __slots__ = (
        "backend",
        "backend_counters",
        "balancer",
        "client",
        "closed",
        "listener",
        "received",
        "sent",
        "set_key",
        "sock",
        "started",
    )

    def __init__(
        self,
        listener: UdpListener,
        client: ClientKey,
        set_key: str,
        backend: Backend,
    ) -> None:
        self.listener = listener
        self.client = client
        self.set_key = set_key
        self.backend = backend
        family = socket.AF_INET6 if ":" in backend.address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            # connect() on UDP only records the peer: the kernel then filters
            # replies from anyone else and reports ICMP errors to this socket.
            self.sock.connect((backend.address, backend.port))
            listener.runtime.loop.add_reader(self.sock.fileno(), self._readable)
        except BaseException:
            self.sock.close()
            raise
        self.closed = False
        # For the access log: when the flow began (loop.time()) and its bytes each way.
        self.started = listener.runtime.loop.time()
        self.sent = 0
        self.received = 0
        self.backend_counters: BackendCounters = listener.runtime.backend_counters(
            set_key, backend.key
        )
        self.backend_counters.total += 1
        self.backend_counters.active += 1
        # The balancer that counted this flow as started; told when it ends (load-aware
        # algorithms such as lc count UDP flows as connections, as IPVS does).
        self.balancer: Balancer | None = None

    def send(self, data: bytes) -> None:
        """Forward a client datagram; dropped if the socket cannot take it now."""
        try:
            self.sock.send(data)
        except OSError:
            # BlockingIOError (send buffer full) or an ICMP error reported for an
            # earlier datagram (ECONNREFUSED): UDP drops, and so do we.
            return
        self.backend_counters.bytes_to_backend += len(data)
        self.sent += len(data)

    def _readable(self) -> None:
        listener = self.listener
        transport = listener.transport
        counters = self.backend_counters
        while True:
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ICMP port unreachable from the backend: nothing to read.
                break
            counters.bytes_from_backend += len(data)
            self.received += len(data)
            if transport is None or transport.is_closing():
                continue
            queued = cast(asyncio.WriteTransport, transport).get_write_buffer_size()
            if queued > MAX_QUEUED_REPLY_BYTES:
                continue
            transport.sendto(data, self.client)
        if not self.closed:
            # A reply counts as activity, as it does for conntrack.
            listener.flows.get(self.client, listener.runtime.loop.time())

    def close(self) -> None:
        """Stop reading and release the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.listener.runtime.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if self.balancer is not None:
            self.balancer.ended(self.backend)
        self.backend_counters.active -= 1
        self.listener.counters.active -= 1
        access_log = self.listener.runtime.access_log
        if access_log is not None and access_log.enabled:
            duration = self.listener.runtime.loop.time() - self.started
            spec = self.listener.spec
            access_log.emit(
                ConnectionRecord(
                    start=time.time() - duration,
                    duration=duration,
                    protocol="UDP",
                    client=self.client,
                    listener=spec.key,
                    service=spec.service,
                    backend=self.backend.key,
                    bytes_to_backend=self.sent,
                    bytes_from_backend=self.received,
                    result=RESULT_OK,
                )
            )


class UdpListener(asyncio.DatagramProtocol):
    """One UDP listening socket and its client flows; the specification can change."""

    def __init__(self, spec: Listener, runtime: ProxyRuntime) -> None:
        self.spec = spec
        self.runtime = runtime
        self.transport: asyncio.DatagramTransport | None = None
        self.counters: ListenerCounters = runtime.listener_counters(spec.key)
        settings = runtime.settings
        self.flows: FlowTable[ClientKey, UdpFlow] = FlowTable(
            settings.udp_flow_table_size,
            settings.udp_idle_timeout_seconds,
            on_evict=self._evicted,
        )

    async def open(self) -> None:
        """Bind; raises OSError when the address cannot be bound."""
        await self.runtime.loop.create_datagram_endpoint(
            lambda: self,
            local_addr=(self.spec.address, self.spec.port),
            # Several workers (seaway run --workers): the kernel spreads client flows.
            reuse_port=listeners_shared() or None,
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def update(self, spec: Listener) -> None:
        """Take a new specification; open flows are re-checked at their next datagram."""
        self.spec = spec

    def apply_settings(self) -> None:
        """Resize the flow table and its idle timeout from the current settings."""
        settings = self.runtime.settings
        self.flows.max_entries = settings.udp_flow_table_size
        self.flows.idle_timeout = settings.udp_idle_timeout_seconds
        now = self.runtime.loop.time()
        self.flows.expire(now)
        while len(self.flows) > self.flows.max_entries:
            oldest = next(self.flows.items())
            self.flows.pop(oldest[0])
            oldest[1].close()

    def expire(self, now: float) -> int:
        """Close flows idle past the timeout; return how many."""
        return self.flows.expire(now)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        client: ClientKey = (cast(str, addr[0]), cast(int, addr[1]))
        spec = self.spec
        if spec.source_ranges and not source_allowed(client[0], spec.source_ranges):
            self.counters.rejected += 1
            return
        runtime = self.runtime
        now = runtime.loop.time()
        live = runtime.sets.get(spec.backend_set)
        flow = self.flows.get(client, now)
        if flow is not None:
            if flow.set_key == spec.backend_set and live is not None and live.has(flow.backend):
                flow.send(data)
                return
            # kube-proxy clears conntrack entries of removed UDP endpoints, so the
            # next datagram is balanced again instead of going to a dead backend.
            self.flows.pop(client)
            flow.close()
        backend = None
        if live is not None:
            backend = live.choose(client[0], client[1], spec.address, spec.port, now=now)
        if backend is None:
            self.counters.rejected += 1
            return
        try:
            flow = UdpFlow(self, client, spec.backend_set, backend)
        except OSError:
            runtime.backend_counters(spec.backend_set, backend.key).failed += 1
            self.counters.rejected += 1
            return
        self.counters.total += 1
        self.counters.active += 1
        self.flows.put(client, flow, now)
        if live is not None:
            live.balancer.started(backend)
            flow.balancer = live.balancer
            live.remember(client[0], backend, now)
        flow.send(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors about replies to clients; UDP has no one to tell.
        pass

    def _evicted(self, client: ClientKey, flow: UdpFlow) -> None:
        flow.close()

    def close(self) -> None:
        """Close the listening socket and every flow."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        for client, flow in self.flows.items():
            self.flows.pop(client)
            flow.close()
