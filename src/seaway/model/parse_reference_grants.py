"""Parser of ReferenceGrant (``gateway.networking.k8s.io/v1`` and ``v1beta1``).

Registered in ``seaway.model.parse``. Fields are checked as the Gateway API's schema
checks them: ``spec.from`` and ``spec.to`` hold 1 to 16 entries; ``group`` and
``kind`` are required in each (``group: ""`` is the core API group), ``namespace`` in
each ``from`` entry; ``name`` in a ``to`` entry is optional.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from seaway.model.fields import (
    DNS_SUBDOMAIN_MAX,
    FieldReader,
    check_label,
    join_path,
    mapping_item,
)
from seaway.model.objects import ObjectMeta
from seaway.model.routes import GrantFrom, GrantTo, ReferenceGrant

# ReferenceGrantSpec: "from" and "to" each hold at most 16 entries.
GRANT_ENTRIES_MAX = 16
# Gateway API Group: empty (core) or a lowercase DNS subdomain, at most 253 characters.
_GROUP = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Gateway API Kind: a letter, then letters, digits and '-', at most 63 characters.
_KIND = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
_KIND_MAX = 63
# Several implementations, and seaway's own backendRefs, accept "core" for the core
# group; a grant written that way means the same thing.
CORE_GROUP_ALIASES = frozenset({"", "core"})


def _group(r: FieldReader, m: Mapping[str, object], path: str) -> str | None:
    if "group" not in m:
        r.error(join_path(path, "group"), 'is required ("" for the core API group)')
        return None
    value = r.string(m, path, "group")
    if value is None:
        if m.get("group") is None:
            r.error(join_path(path, "group"), 'must be a string ("" for the core API group)')
        return None
    if value in CORE_GROUP_ALIASES:
        return ""
    if len(value) > DNS_SUBDOMAIN_MAX or _GROUP.fullmatch(value) is None:
        r.error(join_path(path, "group"), f"{value!r} is not an API group (a DNS subdomain)")
        return None
    return value


def _kind(r: FieldReader, m: Mapping[str, object], path: str) -> str | None:
    value = r.string(m, path, "kind", required=True)
    if value is None:
        return None
    if len(value) > _KIND_MAX or _KIND.fullmatch(value) is None:
        r.error(join_path(path, "kind"), f"{value!r} is not a kind (like HTTPRoute)")
        return None
    return value


@mapping_item
def _grant_from(r: FieldReader, m: Mapping[str, object], path: str) -> GrantFrom | None:
    group = _group(r, m, path)
    kind = _kind(r, m, path)
    namespace = r.string(m, path, "namespace", required=True)
    if namespace is not None and not check_label(r, join_path(path, "namespace"), namespace):
        return None
    if group is None or kind is None or namespace is None:
        return None
    return GrantFrom(group=group, kind=kind, namespace=namespace)


@mapping_item
def _grant_to(r: FieldReader, m: Mapping[str, object], path: str) -> GrantTo | None:
    group = _group(r, m, path)
    kind = _kind(r, m, path)
    name = r.string(m, path, "name")
    if name is not None and not 0 < len(name) <= DNS_SUBDOMAIN_MAX:
        r.error(join_path(path, "name"), f"must be 1 to {DNS_SUBDOMAIN_MAX} characters")
        return None
    if group is None or kind is None:
        return None
    return GrantTo(group=group, kind=kind, name=name)


def _at_most(r: FieldReader, spec: Mapping[str, object], key: str) -> None:
    value = spec.get(key)
    if isinstance(value, list) and len(value) > GRANT_ENTRIES_MAX:
        r.error(join_path("spec", key), f"has {len(value)} entries; at most {GRANT_ENTRIES_MAX}")


def parse_reference_grant(
    r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta
) -> ReferenceGrant:
    spec = r.mapping(doc, "", "spec", required=True)
    if spec is None:
        return ReferenceGrant(meta=meta)
    grant_from = r.list_of(spec, "spec", "from", _grant_from, required=True)
    grant_to = r.list_of(spec, "spec", "to", _grant_to, required=True)
    _at_most(r, spec, "from")
    _at_most(r, spec, "to")
    return ReferenceGrant(
        meta=meta,
        grant_from=tuple(entry for _, entry in grant_from),
        grant_to=tuple(entry for _, entry in grant_to),
    )


__all__ = ["CORE_GROUP_ALIASES", "GRANT_ENTRIES_MAX", "parse_reference_grant"]
