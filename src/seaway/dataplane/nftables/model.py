"""nftables tables as data, and the ``nft -f`` scripts that create or change them (pure).

A :class:`Table` holds named objects (counters, ct timeouts, sets, maps, chains), each with the
lines people read (``comment``). Two scripts come out of it:

- :func:`render_replace`: the whole table, replacing whatever was there (``table`` /
  ``delete table`` / definition, one transaction): the full resync at start.
- :func:`render_changes`: from one table to the next by deleting and adding only the
  elements, rules and objects that differ, so that a changed endpoint rewrites map
  elements and nothing else (and dynamic flow maps keep their flows).

An object's declaration never changes under the same name: every setting that shapes
a declaration (a table size, a timeout) is part of the object's name, so a changed
setting is a new object and the old one is deleted.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["counter", "ct timeout", "set", "map", "chain"]
# Order of definition: objects are declared before the rules and elements that use them
# (a counter is named by map elements and rules, so it comes first and goes last).
_KIND_ORDER: dict[str, int] = {"counter": 0, "ct timeout": 0, "set": 1, "map": 2, "chain": 3}


@dataclass(frozen=True, slots=True)
class NftObject:
    """One named object of a table.

    ``declaration``: the lines inside its braces before elements or rules (a chain's
    hook line, a map's ``typeof``/``flags``). ``elements``: a map's ``key -> value`` or
    a set's ``key -> ""``, as nft text. ``rules``: a chain's rules. ``comment``: lines
    for people, rendered as ``#`` comments above the object. ``service``: the Service
    (``namespace/name``) the object serves, "" for shared objects.
    """

    kind: Kind
    name: str
    declaration: tuple[str, ...] = ()
    elements: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[str, ...] = ()
    comment: tuple[str, ...] = ()
    service: str = ""

    def same_shape(self, other: NftObject) -> bool:
        return self.kind == other.kind and self.declaration == other.declaration


@dataclass(frozen=True, slots=True)
class Table:
    """One nftables table: its family (``ip``, ``netdev``), name and objects by name."""

    family: str
    name: str
    objects: Mapping[str, NftObject]

    @property
    def ref(self) -> str:
        return f"{self.family} {self.name}"


def quote(name: str) -> str:
    """An object name as nft reads it: seaway's names (letters, digits, ``-/._``, starting
    with a letter) are identifiers as they are; anything else is refused."""
    if not name[:1].isalpha() or not all(c.isalnum() or c in "-/._" for c in name):
        raise ValueError(f"not an nftables identifier seaway makes: {name!r}")
    return name


def _elements_text(obj: NftObject, keys: Iterable[str]) -> str:
    if obj.kind == "map":
        return ", ".join(f"{key} : {obj.elements[key]}" for key in keys)
    return ", ".join(keys)


def _sorted(objects: Iterable[NftObject]) -> list[NftObject]:
    return sorted(objects, key=lambda o: (_KIND_ORDER[o.kind], o.name))


# Comment lines are wrapped to this width, for a terminal.
_COMMENT_WIDTH = 88
# Elements per line when a table is written out whole, to keep lines readable.
_ELEMENTS_PER_LINE = 8


def render_object(obj: NftObject, indent: str = "  ") -> list[str]:
    """``obj``'s definition inside a table block, with its comment lines."""
    lines = [
        f"{indent}# {part}"
        for line in obj.comment
        for part in textwrap.wrap(line, _COMMENT_WIDTH) or [""]
    ]
    if obj.kind == "ct timeout":
        lines.append(f"{indent}ct timeout {quote(obj.name)} {{")
    else:
        lines.append(f"{indent}{obj.kind} {quote(obj.name)} {{")
    inner = indent + "  "
    lines += [f"{inner}{line}" for line in obj.declaration]
    if obj.elements:
        keys = list(obj.elements)
        chunks = [keys[i : i + _ELEMENTS_PER_LINE] for i in range(0, len(keys), _ELEMENTS_PER_LINE)]
        lines.append(f"{inner}elements = {{")
        for i, chunk in enumerate(chunks):
            tail = "," if i < len(chunks) - 1 else ""
            lines.append(f"{inner}  {_elements_text(obj, chunk)}{tail}")
        lines.append(f"{inner}}}")
    lines += [f"{inner}{rule}" for rule in obj.rules]
    lines.append(f"{indent}}}")
    return lines


def render_table(table: Table) -> list[str]:
    """The table's whole definition (``table FAMILY NAME { ... }``)."""
    lines = [f"table {table.ref} {{"]
    for i, obj in enumerate(_sorted(table.objects.values())):
        if i:
            lines.append("")
        lines += render_object(obj)
    lines.append("}")
    return lines


def render_replace(table: Table) -> list[str]:
    """Lines that replace the table (whatever it held) with ``table``, atomically."""
    return [
        f"# {table.ref}: replaced whole (a leftover of an earlier run goes with it)",
        f"table {table.ref}",
        f"delete table {table.ref}",
        *render_table(table),
    ]


def render_delete(family: str, name: str) -> list[str]:
    """Lines that delete the table if it exists (``table`` first makes it exist)."""
    return [f"table {family} {name}", f"delete table {family} {name}"]


def render_changes(old: Table, new: Table) -> list[str]:
    """Lines that turn ``old`` into ``new`` in one transaction, touching only differences.

    Order matters inside the transaction: elements that go (a dispatch entry jumping
    to a chain about to be deleted) and rules of changed chains (which may name a map
    about to be deleted) are removed first; then objects that go; then new objects;
    then new rules and elements. Empty when the tables are equal.
    """
    ref = new.ref
    lines: list[str] = []
    removed = [
        o
        for name, o in old.objects.items()
        if name not in new.objects or not o.same_shape(new.objects[name])
    ]
    added = [
        o
        for name, o in new.objects.items()
        if name not in old.objects or not o.same_shape(old.objects[name])
    ]
    # Objects that are the very same (a builder reused them: their listener did not
    # change) have nothing to compare; at 10,000 Services most of them are.
    kept = [
        (before, o)
        for n, o in new.objects.items()
        if (before := old.objects.get(n)) is not None and before is not o and o.same_shape(before)
    ]
    # 1. elements that go or change value.
    for before, after in kept:
        gone = [k for k, v in before.elements.items() if after.elements.get(k) != v]
        if gone:
            lines.append(f"delete element {ref} {quote(after.name)} {{ {', '.join(gone)} }}")
    # 2. rules of chains that change or go (their references go with them).
    for before, after in kept:
        if before.kind == "chain" and before.rules != after.rules:
            lines.append(f"flush chain {ref} {quote(after.name)}")
    for obj in removed:
        if obj.kind == "chain":
            lines.append(f"flush chain {ref} {quote(obj.name)}")
    # 3. objects that go: chains first (maps may be named by them), then the rest.
    for obj in sorted(removed, key=lambda o: -_KIND_ORDER[o.kind]):
        lines.append(f"delete {obj.kind} {ref} {quote(obj.name)}")
    # 4. new objects, declared empty (chains first: new dispatch elements jump to them).
    for obj in sorted(added, key=lambda o: -_KIND_ORDER[o.kind]):
        lines += [f"# {line}" for line in obj.comment]
        decl = "; ".join(obj.declaration)
        body = f" {{ {decl}; }}" if decl else ""
        lines.append(f"add {obj.kind} {ref} {quote(obj.name)}{body}")
    # 5. rules of new and changed chains, then elements that are new or changed.
    for obj in _sorted(added):
        lines += [f"add rule {ref} {quote(obj.name)} {rule}" for rule in obj.rules]
    for before, after in kept:
        if after.kind == "chain" and before.rules != after.rules:
            lines += [f"add rule {ref} {quote(after.name)} {rule}" for rule in after.rules]
    for obj in _sorted(added):
        if obj.elements:
            lines.append(
                f"add element {ref} {quote(obj.name)} {{ {_elements_text(obj, obj.elements)} }}"
            )
    for before, after in kept:
        new_keys = [k for k, v in after.elements.items() if before.elements.get(k) != v]
        if new_keys:
            lines.append(
                f"add element {ref} {quote(after.name)} {{ {_elements_text(after, new_keys)} }}"
            )
    return lines


# Families seaway may own a table in; every other table on the host is left alone.
FAMILIES = ("ip", "netdev")


def render_transaction(old: Mapping[str, Table] | None, new: Mapping[str, Table], name: str) -> str:
    """One ``nft -f`` script from ``old`` (None: unknown, at start) to ``new``.

    At start every family's table is replaced whole or deleted (a full resync that also
    removes what an earlier run left); later only the differences are written. Empty
    when nothing changes.
    """
    lines: list[str] = []
    for family in FAMILIES:
        after = new.get(family)
        before = old.get(family) if old is not None else None
        if after is not None and before is not None:
            lines += render_changes(before, after)
        elif after is not None:
            lines += render_replace(after)
        elif old is None or before is not None:
            lines += render_delete(family, name)
    if not lines:
        return ""
    return "\n".join(lines) + "\n"
