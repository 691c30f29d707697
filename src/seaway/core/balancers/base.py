"""The one small interface every balancing algorithm implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence, Set
from typing import TYPE_CHECKING, ClassVar

from seaway.core.config import Backend

if TYPE_CHECKING:
    from seaway.core.balancers.connection_counts import ConnectionCounts

# What an algorithm needs from its caller, declared in ``Balancer.needs`` so that the
# proxy knows what to compute and report, and the docs can tell users.
#
# ``pick``'s ``flow_hash`` is the flow's hash: ``flow_hash`` of the 5-tuple, or
# ``source_hash`` of the client address when the Service asks for ``hash-on: source-ip``.
FLOW_HASH = "flow_hash"
# ``pick``'s ``flow_hash`` is ``source_hash(client address)``, whatever ``hash-on`` says.
SOURCE_HASH = "source_hash"
# ``pick``'s ``flow_hash`` is ``destination_hash(destination address)`` (the VIP).
DESTINATION_HASH = "destination_hash"
# ``started``/``ended`` are called for every connection or request.
CONNECTION_COUNTS = "connection_counts"
# ``observe`` is called with each measured latency.
LATENCY = "latency"
# ``pick`` receives ``now`` (a monotonic time in seconds).
CLOCK = "clock"
# The balancer draws from the injected ``random.Random``.
RANDOM = "random"

NEEDS: frozenset[str] = frozenset(
    {FLOW_HASH, SOURCE_HASH, DESTINATION_HASH, CONNECTION_COUNTS, LATENCY, CLOCK, RANDOM}
)


def unique_sorted(backends: Iterable[Backend]) -> list[Backend]:
    """The backends sorted by key, the first of each key kept (a repeated key is the
    same destination). Hash-based algorithms build from this order, so that every
    instance builds the same table whatever order the set came in."""
    by_key: dict[str, Backend] = {}
    for backend in backends:
        by_key.setdefault(backend.key, backend)
    return [by_key[key] for key in sorted(by_key)]


class Balancer(ABC):
    """Chooses a backend from a weighted backend set.

    Built from a backend set and rebuilt with ``update`` when the set changes.
    Algorithms learn about health only through the set they are given. ``pick``
    receives the flow's hash (see ``seaway.core.hashing``); algorithms that do not
    hash ignore it. ``avoid`` holds backends that already failed for this flow
    (a retry must go elsewhere when anything else exists). ``now`` is the caller's
    monotonic clock in seconds, for algorithms whose choice depends on time (slow
    start, latency decay); the others ignore it. Balancers never read a clock.

    The owner (the proxy) calls, for every connection or request: ``pick`` (with
    ``now``), then ``started(backend)`` once it is committed to that backend,
    ``observe(backend, latency, now)`` when it has measured a latency, and
    ``ended(backend)`` exactly once when the work is over. ``needs`` says which of
    these inputs the algorithm actually uses.
    """

    name: ClassVar[str]
    # True for algorithms whose choice depends only on the flow hash and the set,
    # so that every seaway instance makes the same choice.
    consistent: ClassVar[bool] = False
    # The inputs this algorithm uses (a subset of ``NEEDS``).
    needs: ClassVar[frozenset[str]] = frozenset()
    # The open connections (or requests) it balances on, for algorithms that count
    # them: what workers share (``ConnectionCounts.share``). None for the others.
    counts: ConnectionCounts | None = None

    @abstractmethod
    def update(self, backends: Sequence[Backend]) -> None:
        """Replace the backend set."""

    @abstractmethod
    def pick(
        self,
        flow_hash: int,
        avoid: Set[Backend] = frozenset(),
        *,
        now: float | None = None,
    ) -> Backend | None:
        """The backend for a new flow, or None when the set is empty."""

    def started(self, backend: Backend) -> None:
        """A connection or request to ``backend`` began (for load-aware algorithms)."""

    def ended(self, backend: Backend) -> None:
        """A connection or request to ``backend`` ended (for load-aware algorithms)."""

    def observe(self, backend: Backend, latency_seconds: float, now: float) -> None:
        """A latency was measured on ``backend`` at ``now`` (for latency-aware algorithms).

        For L4 the proxy reports the time to connect to the backend; for L7 the time
        from sending a request to receiving the response headers.
        """
