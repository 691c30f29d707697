"""The interface every data plane implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from seaway.core.config import DesiredConfig


@dataclass(slots=True)
class BackendCounters:
    """Traffic counters for one backend of one backend set (owned by the data plane)."""

    active: int = 0  # connections (TCP) or flows (UDP) open now
    total: int = 0  # connections or flows ever opened
    failed: int = 0  # connect attempts that failed (refused, timed out)
    bytes_to_backend: int = 0
    bytes_from_backend: int = 0


@dataclass(slots=True)
class ListenerCounters:
    active: int = 0
    total: int = 0
    rejected: int = 0  # refused: no usable backend, or outside loadBalancerSourceRanges


@dataclass(slots=True)
class Counters:
    """A data plane's counters: per (backend set key, backend key) and per listener key."""

    backends: dict[tuple[str, str], BackendCounters] = field(default_factory=dict)
    listeners: dict[str, ListenerCounters] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What happened when a configuration was applied.

    ``errors`` maps a listener key to why it could not be opened (address in use,
    address not on this host, ...); the rest of the configuration is applied anyway.
    """

    errors: Mapping[str, str] = field(default_factory=dict)


class DataPlane(Protocol):
    """Applies desired configurations; never restarts what did not change."""

    async def apply(self, config: DesiredConfig) -> ApplyResult:
        """Move from the configuration applied last to ``config``."""
        ...

    def counters(self) -> Counters:
        """Live counters (read by the admin API; do not mutate)."""
        ...

    async def close(self) -> None:
        """Stop listening and close every connection."""
        ...
