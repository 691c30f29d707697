"""ClusterState: one immutable snapshot of everything seaway was told."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from seaway.model.objects import EndpointSlice, IPAddressPool, Node, SeawaySettings, Service


def _frozen_map() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ClusterState:
    """A validated snapshot, built by ``seaway.model.validate.build_state``.

    ``services`` and ``pools`` are keyed ``namespace/name``; ``nodes`` (cluster-scoped)
    are keyed by name alone.

    ``slices_by_service`` maps a Service key to its slices, sorted by slice name so
    that everything computed from a snapshot is deterministic.
    """

    services: Mapping[str, Service] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    slices_by_service: Mapping[str, tuple[EndpointSlice, ...]] = field(
        default_factory=_frozen_map  # type: ignore[arg-type]
    )
    nodes: Mapping[str, Node] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    pools: Mapping[str, IPAddressPool] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    settings: SeawaySettings = field(default_factory=SeawaySettings)
    # Notes about skipped input (unknown kinds), shown in the admin state; not errors.
    notes: tuple[str, ...] = ()

    def slices_for(self, service_key: str) -> tuple[EndpointSlice, ...]:
        return self.slices_by_service.get(service_key, ())
