"""Which cross-namespace references the snapshot's ReferenceGrants permit (pure).

Gateway API: a reference from an object in one namespace to an object in another is
valid only when a ReferenceGrant in the *referenced* object's namespace has

- a ``from`` entry naming the referring object's group, kind and namespace, and
- a ``to`` entry naming the referenced object's group and kind, and either no name
  (every object of that kind) or the referenced object's name.

Entries of one list are alternatives (OR); a ``from`` and a ``to`` entry must match in
the same grant. References within one namespace need no grant. seaway asks for two
kinds of reference: HTTPRoute backendRefs to Services, and Gateway listener
``tls.certificateRefs`` to Secrets. The grants are read from the snapshot every time
the configuration is planned, so adding or deleting one takes effect with the next
configuration, and deleting one revokes the references it allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from seaway.model.cluster import ClusterState
from seaway.model.routes import ReferenceGrant


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference, as a grant is matched against it (group "" is the core group)."""

    from_group: str
    from_kind: str
    from_namespace: str
    to_group: str
    to_kind: str
    to_namespace: str
    to_name: str


def _grants_by_namespace(state: ClusterState) -> Mapping[str, tuple[ReferenceGrant, ...]]:
    by_namespace: dict[str, list[ReferenceGrant]] = {}
    for key in sorted(state.reference_grants):
        grant = state.reference_grants[key]
        by_namespace.setdefault(grant.meta.namespace, []).append(grant)
    return MappingProxyType({ns: tuple(grants) for ns, grants in by_namespace.items()})


def _grant_permits(grant: ReferenceGrant, ref: Reference) -> bool:
    return any(
        f.group == ref.from_group and f.kind == ref.from_kind and f.namespace == ref.from_namespace
        for f in grant.grant_from
    ) and any(
        t.group == ref.to_group and t.kind == ref.to_kind and t.name in (None, ref.to_name)
        for t in grant.grant_to
    )


@dataclass(frozen=True, slots=True)
class ReferenceGrants:
    """The grants of one snapshot, by namespace; built once per plan."""

    by_namespace: Mapping[str, tuple[ReferenceGrant, ...]]

    @classmethod
    def of(cls, state: ClusterState) -> ReferenceGrants:
        return cls(_grants_by_namespace(state))

    def permits(self, ref: Reference) -> bool:
        """Whether ``ref`` may be followed: same namespace, or a grant allows it."""
        if ref.from_namespace == ref.to_namespace:
            return True
        return any(_grant_permits(g, ref) for g in self.by_namespace.get(ref.to_namespace, ()))


def refusal(ref: Reference) -> str:
    """Why ``ref`` is not permitted, naming the grant that would permit it."""
    from_group = ref.from_group or "core"
    to_group = ref.to_group or "core"
    return (
        f"{ref.to_kind} {ref.to_namespace}/{ref.to_name} is in another namespace and no "
        f"ReferenceGrant in {ref.to_namespace} allows {from_group}/{ref.from_kind} from "
        f"{ref.from_namespace} to refer to {to_group}/{ref.to_kind} {ref.to_name}"
    )
