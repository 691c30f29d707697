"""The kernel's counters of seaway's tables, as the admin API's ``Counters`` (pure).

The rules (:mod:`.rules`) keep named counters: per listener ``packets/ID`` (every
packet from clients to it, and their bytes), ``flows/ID`` (new flows it forwarded)
and ``rejected/ID`` (refused: no usable backend, or outside
loadBalancerSourceRanges); per backend of a NAT listener ``flows/ID/ADDRESS/PORT``
(new flows the selection sent there). DSR listeners keep theirs in ``netdev seaway``
too; counters of the same name in both tables are added up.

:func:`parse_counters` reads ``nft -j list counters`` output; :func:`kernel_counters`
maps the values into :class:`~seaway.dataplane.base.Counters` as the proxy fills it.
Neither raises on odd input: a counter that is missing or malformed counts 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seaway.dataplane.base import BackendCounters, Counters, ListenerCounters
from seaway.dataplane.nftables.rules import TABLE_NAME


@dataclass(frozen=True, slots=True)
class CounterValue:
    """One counter's packets and bytes."""

    packets: int = 0
    bytes: int = 0


def _count(value: Any) -> int:
    # nft prints unsigned 64-bit integers; anything else is not a count.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_counters(text: str, table: str = TABLE_NAME) -> dict[str, CounterValue]:
    """Counter name -> value, for the counters of ``table`` (any family) in ``nft -j``
    output; empty when the text is not nft's JSON."""
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    items = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return {}
    out: dict[str, CounterValue] = {}
    for item in items:
        counter = item.get("counter") if isinstance(item, dict) else None
        if not isinstance(counter, dict) or counter.get("table") != table:
            continue
        name = counter.get("name")
        if not isinstance(name, str):
            continue
        before = out.get(name, CounterValue())
        out[name] = CounterValue(
            before.packets + _count(counter.get("packets")),
            before.bytes + _count(counter.get("bytes")),
        )
    return out


def kernel_counters(
    values: Mapping[str, CounterValue],
    listeners: Mapping[str, str],
    backends: Mapping[tuple[str, str], tuple[str, ...]],
) -> Counters:
    """The data plane's ``Counters`` from counter values.

    ``listeners``: listener key -> the id in its counters' names; ``backends``:
    (backend set key, backend key) -> its counters' names (one per listener of the
    set); both from :class:`~seaway.dataplane.nftables.rules.Ruleset`. The kernel
    knows no open connections and no bytes per backend: those stay 0; ``failed``
    stays 0 too (a backend that refuses answers the client directly).
    """
    zero = CounterValue()
    out = Counters()
    for key, ident in listeners.items():
        packets = values.get(f"packets/{ident}", zero)
        out.listeners[key] = ListenerCounters(
            total=values.get(f"flows/{ident}", zero).packets,
            rejected=values.get(f"rejected/{ident}", zero).packets,
            packets=packets.packets,
            bytes=packets.bytes,
        )
    for backend, names in backends.items():
        out.backends[backend] = BackendCounters(
            total=sum(values.get(name, zero).packets for name in names)
        )
    return out
