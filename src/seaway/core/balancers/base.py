"""The one small interface every balancing algorithm implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence, Set
from typing import ClassVar

from seaway.core.config import Backend


class Balancer(ABC):
    """Chooses a backend from a weighted backend set.

    Built from a backend set and rebuilt with ``update`` when the set changes.
    Algorithms learn about health only through the set they are given. ``pick``
    receives the flow's hash (see ``seaway.core.hashing``); algorithms that do not
    hash ignore it. ``avoid`` holds backends that already failed for this flow
    (a retry must go elsewhere when anything else exists).
    """

    name: ClassVar[str]
    # True for algorithms whose choice depends only on the flow hash and the set,
    # so that every seaway instance makes the same choice.
    consistent: ClassVar[bool] = False

    @abstractmethod
    def update(self, backends: Sequence[Backend]) -> None:
        """Replace the backend set."""

    @abstractmethod
    def pick(self, flow_hash: int, avoid: Set[Backend] = frozenset()) -> Backend | None:
        """The backend for a new flow, or None when the set is empty."""

    def started(self, backend: Backend) -> None:
        """A connection or request to ``backend`` began (for load-aware algorithms)."""

    def ended(self, backend: Backend) -> None:
        """A connection or request to ``backend`` ended (for load-aware algorithms)."""
