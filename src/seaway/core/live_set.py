"""LiveBackendSet: a backend set as a proxy serves it — its balancer and its affinity table.

Pure (time is passed in): the L4 and the L7 proxies hold one per backend set and ask
it which backend a new flow or request goes to.
"""

from __future__ import annotations

import random
from collections.abc import Set

from seaway.core.balancers.base import DESTINATION_HASH, SOURCE_HASH, Balancer
from seaway.core.balancers.registry import balancer_for
from seaway.core.config import Backend, BackendSet
from seaway.core.flows import FlowTable
from seaway.core.hashing import destination_hash, flow_hash, source_hash

# How many clients sessionAffinity remembers per backend set. kube-proxy's iptables
# "recent" module keeps 200 by default (ip_list_tot); seaway keeps far more, and
# still bounds the memory a client population can take.
AFFINITY_TABLE_SIZE = 65536


class LiveBackendSet:
    """One backend set's specification, its balancer and its sessionAffinity table.

    Owned by a data plane; updated in place when the set changes, so that
    listeners and connections holding it always see the current backends.
    """

    __slots__ = ("_by_key", "affinity", "balancer", "rng", "spec")

    def __init__(self, spec: BackendSet, *, rng: random.Random) -> None:
        self.rng = rng
        self.spec = spec
        self.balancer: Balancer = balancer_for(spec, rng=rng)
        self._by_key: dict[str, Backend] = {b.key: b for b in spec.backends}
        self.affinity: FlowTable[str, str] | None = self._affinity_table(spec)

    @staticmethod
    def _affinity_table(spec: BackendSet) -> FlowTable[str, str] | None:
        if spec.affinity_timeout is None or spec.affinity_timeout <= 0:
            return None
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
            self.balancer = balancer_for(spec, rng=self.rng)
        elif spec.backends != old.backends:
            self.balancer.update(spec.backends)
        self._by_key = {b.key: b for b in spec.backends}
        if spec.affinity_timeout != old.affinity_timeout:
            self.affinity = self._affinity_table(spec)

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
        if self.spec.hash_on == "source-ip" or SOURCE_HASH in needs:
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
