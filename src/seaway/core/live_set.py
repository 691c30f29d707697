"""LiveBackendSet: a backend set as a proxy serves it — its balancer and its affinity table.

Pure (time is passed in): the L4 and the L7 proxies hold one per backend set and ask
it which backend a new flow or request goes to. In a worker of several
(``seaway run --workers N``) the data plane passes the state shared between the
workers (``seaway.core.sharing.SharedState``): the set's connection counts and its
ClientIP affinity then live there, under keys made from the set's key.
"""

from __future__ import annotations

import random
from collections.abc import Set

from seaway.core.balancers.base import DESTINATION_HASH, FLOW_HASH, SOURCE_HASH, Balancer
from seaway.core.balancers.registry import balancer_for
from seaway.core.config import Backend, BackendSet
from seaway.core.flows import FlowTable
from seaway.core.hashing import destination_hash, flow_hash, source_hash
from seaway.core.sharing import SharedAffinityTable, SharedState

# The inputs of ``pick`` that are a hash: a balancer needing none of them gets 0.
_HASHES = frozenset({FLOW_HASH, SOURCE_HASH, DESTINATION_HASH})
# How many clients sessionAffinity remembers per backend set. kube-proxy's iptables
# "recent" module keeps 200 by default (ip_list_tot); seaway keeps far more, and
# still bounds the memory a client population can take.
AFFINITY_TABLE_SIZE = 65536


class LiveBackendSet:
    """One backend set's specification, its balancer and its sessionAffinity table.

    Owned by a data plane; updated in place when the set changes, so that
    listeners and connections holding it always see the current backends.
    ``shared`` (workers only) is where the set keeps its connection counts and its
    affinity entries, so that every worker sees them; without it both are this
    process's own. Entries are keyed by ``shared.scope`` and ``spec.key``.
    """

    __slots__ = ("_by_key", "_shared", "affinity", "balancer", "rng", "spec")

    def __init__(
        self, spec: BackendSet, *, rng: random.Random, shared: SharedState | None = None
    ) -> None:
        self.rng = rng
        self.spec = spec
        self._shared = shared
        self.balancer: Balancer = self._new_balancer(spec)
        self._by_key: dict[str, Backend] = {b.key: b for b in spec.backends}
        self.affinity: FlowTable[str, str] | SharedAffinityTable | None = self._affinity_table(spec)

    @property
    def name(self) -> str:
        """The key of the set's shared entries: the plane's scope and the set's key."""
        scope = self._shared.scope if self._shared is not None else ""
        return f"{scope}\0{self.spec.key}"

    def _new_balancer(self, spec: BackendSet) -> Balancer:
        balancer = balancer_for(spec, rng=self.rng)
        counts = balancer.counts
        if counts is not None and self._shared is not None:
            counts.share(self._shared.counts, self.name)
        return balancer

    def _affinity_table(self, spec: BackendSet) -> FlowTable[str, str] | SharedAffinityTable | None:
        if spec.affinity_timeout is None or spec.affinity_timeout <= 0:
            return None
        if self._shared is not None:
            return SharedAffinityTable(
                self._shared.affinity, self.name, spec.affinity_timeout, spec.backends
            )
        # kube-proxy refreshes the client's entry on every new connection and forgets
        # it after timeoutSeconds without one: an idle timeout, as FlowTable keeps.
        return FlowTable(AFFINITY_TABLE_SIZE, spec.affinity_timeout)

    def update(self, spec: BackendSet) -> None:
        """Take a new specification: rebuild the balancer, keep remembered clients."""
        old = self.spec
        self.spec = spec
        if (
            spec.algorithm != old.algorithm
            or spec.maglev_table_size != old.maglev_table_size
            or spec.slow_start_window != old.slow_start_window
        ):
            previous = self.balancer
            self.balancer = self._new_balancer(spec)
            old_counts = previous.counts
            if old_counts is not None and self.balancer.counts is None:
                # Nobody will count this worker's open connections down any more.
                old_counts.release()
        elif spec.backends != old.backends:
            self.balancer.update(spec.backends)
        self._by_key = {b.key: b for b in spec.backends}
        if spec.affinity_timeout != old.affinity_timeout:
            self.affinity = self._affinity_table(spec)
        elif isinstance(self.affinity, SharedAffinityTable) and spec.backends != old.backends:
            self.affinity.update_backends(spec.backends)

    def has(self, backend: Backend) -> bool:
        """Whether ``backend`` is still a member of the set."""
        return backend.key in self._by_key

    def choose(
        self,
        client_address: str,
        client_port: int,
        destination_address: str,
        destination_port: int,
        *,
        now: float,
        avoid: Set[Backend] = frozenset(),
    ) -> Backend | None:
        """The backend for a new flow from the client, or None when none is usable."""
        if self.affinity is not None:
            remembered = self.affinity.get(client_address, now)
            if remembered is not None:
                backend = self._by_key.get(remembered)
                if backend is not None and backend not in avoid:
                    return backend
        needs = self.balancer.needs
        if needs.isdisjoint(_HASHES):
            key = 0  # round-robin, random, least-*: no hash to compute per pick
        elif self.spec.hash_on == "source-ip" or SOURCE_HASH in needs:
            key = source_hash(client_address)
        elif DESTINATION_HASH in needs:
            key = destination_hash(destination_address)
        else:
            key = flow_hash(
                self.spec.protocol,
                client_address,
                client_port,
                destination_address,
                destination_port,
            )
        return self.balancer.pick(key, avoid, now=now)

    def remember(self, client_address: str, backend: Backend, now: float) -> None:
        """Record the client's backend for sessionAffinity (no-op when affinity is off)."""
        if self.affinity is not None:
            self.affinity.put(client_address, backend.key, now)

    def expire(self, now: float) -> None:
        """Forget clients idle past the affinity timeout."""
        if self.affinity is not None:
            self.affinity.expire(now)
