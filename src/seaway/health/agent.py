"""``seaway node-agent``: a kube-proxy compatible health server for one node.

``NodeAgent`` reads manifests (a watched ``FileSource``), and serves what kube-proxy
serves for load balancers (answers decided in ``seaway.health.agent_rules``):

- on each Service's healthCheckNodePort (type LoadBalancer, externalTrafficPolicy
  Local), at any path: 200 when this node has a ready local endpoint, else 503;
- on the healthz address (port 10256 by default): ``/healthz`` (proxy healthy and
  node eligible) and ``/livez`` (proxy healthy).

A change to the files is "applied" when it validates; an invalid change is a pending
update, and once one has waited ``health_timeout`` the agent is unhealthy, as
kube-proxy is when it cannot program a change. Owns its servers and its source task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from seaway.core.config import join_host_port
from seaway.health import agent_rules
from seaway.http1 import Handler, HTTPServer, Request, Response
from seaway.model.cluster import ClusterState
from seaway.model.errors import ConfigError
from seaway.sources.files import FileSource

log = logging.getLogger(__name__)


class NodeAgent:
    """The health server of node ``node``.

    ``address`` is where the Service health ports listen (kube-proxy listens on the
    node's addresses; ``0.0.0.0`` by default here). ``clock`` is the monotonic clock
    for staleness and ``wall_clock`` the time shown in bodies (injectable for tests).
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        node: str,
        healthz_address: str = f"0.0.0.0:{agent_rules.HEALTHZ_PORT}",
        address: str = "0.0.0.0",
        health_timeout: float = agent_rules.DEFAULT_HEALTH_TIMEOUT,
        poll_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.address = address
        self.health_timeout = health_timeout
        self._clock = clock
        self._wall_clock = wall_clock
        self._source = FileSource(
            paths, on_change=self._on_change, on_error=self._on_error, poll_interval=poll_interval
        )
        self._healthz_address = healthz_address
        self._healthz = HTTPServer(self._handle_healthz)
        self._healthz_started = False
        self.state = ClusterState()
        self.last_updated = wall_clock()
        self.oldest_pending: float | None = None  # monotonic time of the first unapplied change
        self._servers: dict[str, tuple[int, HTTPServer]] = {}
        self.listen_errors: dict[str, str] = {}
        self._pending: ClusterState | None = None
        self._wake = asyncio.Event()

    # -- what the rules need ----------------------------------------------------------

    def healthy(self) -> bool:
        return agent_rules.proxy_healthy(self._clock(), self.oldest_pending, self.health_timeout)

    def eligible(self) -> bool:
        return agent_rules.node_eligible(self.state.nodes.get(self.node))

    # -- source callbacks ---------------------------------------------------------------

    def _on_change(self, state: ClusterState) -> None:
        self._pending = state
        self._wake.set()

    def _on_error(self, errors: list[ConfigError]) -> None:
        if self.oldest_pending is None:
            self.oldest_pending = self._clock()
        for error in errors:
            log.error("invalid configuration, answering from the last good one: %s", error)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the files (InvalidConfiguration when they are bad) and open every server."""
        state = self._source.load()
        await self._healthz.start(self._healthz_address)
        self._healthz_started = True
        await self._apply(state)
        log.info("node agent for %s: healthz on http://%s", self.node, self.healthz_bound)

    @property
    def healthz_bound(self) -> str:
        return self._healthz.bound_address

    def service_ports(self) -> dict[str, int]:
        """Service key -> health check node port being served."""
        return {key: port for key, (port, _) in self._servers.items()}

    async def serve(self) -> None:
        """Watch the files and follow them until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._source.run())
            tasks.create_task(self._follow())

    async def run(self) -> None:
        await self.start()
        try:
            await self.serve()
        finally:
            await self.close()

    async def close(self) -> None:
        for _, server in self._servers.values():
            await server.close(grace=0.2)
        self._servers.clear()
        if self._healthz_started:
            self._healthz_started = False
            await self._healthz.close(grace=0.2)

    async def _follow(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            state, self._pending = self._pending, None
            if state is not None:
                await self._apply(state)

    async def _apply(self, state: ClusterState) -> None:
        self.state = state
        wanted = agent_rules.health_check_ports(state)
        for key in list(self._servers):
            port, server = self._servers[key]
            if wanted.get(key) != port:
                del self._servers[key]
                await server.close(grace=0.2)
        errors: dict[str, str] = {}
        for key, port in wanted.items():
            if key in self._servers:
                continue
            server = HTTPServer(self._service_handler(key))
            address = join_host_port(self.address, port)
            try:
                await server.start(address)
            except OSError as exc:
                errors[key] = f"cannot listen on {address}: {exc.strerror or exc}"
                log.error("health check of %s: %s", key, errors[key])
                continue
            self._servers[key] = (port, server)
        self.listen_errors = errors
        self.last_updated = self._wall_clock()
        self.oldest_pending = None  # in sync

    # -- handlers -----------------------------------------------------------------------

    def _service_handler(self, key: str) -> Handler:
        namespace, name = key.split("/", 1)

        async def handle(request: Request) -> Response:
            count = agent_rules.local_ready_endpoints(self.state, key, self.node)
            answer = agent_rules.service_health(namespace, name, count, self.healthy())
            return Response(answer.status, answer.headers, answer.body)

        return handle

    async def _handle_healthz(self, request: Request) -> Response:
        now = self._wall_clock()
        if request.path == "/healthz":
            answer = agent_rules.healthz(self.healthy(), self.eligible(), self.last_updated, now)
        elif request.path == "/livez":
            answer = agent_rules.livez(self.healthy(), self.last_updated, now)
        else:
            return Response.text(404, "404 page not found\n")
        return Response(answer.status, answer.headers, answer.body)


async def run_node_agent(agent: NodeAgent) -> int:
    """Run ``agent`` until cancelled; 1 when its files are invalid or a port cannot be bound."""
    from seaway.model.errors import InvalidConfiguration  # noqa: PLC0415

    try:
        await agent.start()
    except InvalidConfiguration as exc:
        for error in exc.errors:
            log.error("%s", error)
        await agent.close()
        return 1
    except (OSError, ValueError) as exc:
        log.error("node agent cannot start: %s", exc)
        await agent.close()
        return 1
    try:
        await agent.serve()
    finally:
        with contextlib.suppress(Exception):
            await agent.close()
    return 0
