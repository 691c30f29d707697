"""How the kernel serves one backend set: selection, forwarding, idle timeout, table size (pure).

Read from the Service's ``seaway.io/`` kernel annotations (carried in
``BackendSet.kernel_annotations``); a value seaway does not understand falls back to
the default and the problem is reported, so a typo never takes a Service down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from seaway.core.balancers.maglev import is_prime
from seaway.core.config import BackendSet
from seaway.model.annotations import (
    FLOW_IDLE_TIMEOUT,
    FORWARDING,
    FORWARDING_VALUES,
    KERNEL_BACKEND_COUNTERS,
    KERNEL_SELECTION,
    KERNEL_SELECTION_VALUES,
    KERNEL_TABLE_SIZE,
)

Selection = Literal["maglev", "modulo", "random"]
Forwarding = Literal["nat", "dsr"]

# Idle timeouts when the Service sets none: AWS Network Load Balancer's fixed idle
# timeouts (350 s TCP, 120 s UDP), the figure applications already set keepalives for.
# The kernel's own default for established TCP (nf_conntrack_tcp_timeout_established,
# 432000 s = 5 days) would let dead flows pile up on a load balancer.
DEFAULT_TCP_IDLE_SECONDS = 350
DEFAULT_UDP_IDLE_SECONDS = 120
# A UDP flow that never got an answer is forgotten after this at most (the kernel's
# nf_conntrack_udp_timeout default).
UDP_UNREPLIED_SECONDS = 30

# Maglev table sizes: the primes IPVS's Maglev scheduler (net/netfilter/ipvs/ip_vs_mh.c)
# offers. Each slot is one nftables map element, about 240 bytes of kernel memory
# (measured, docs/kernel.md), so the table is as small as balance allows.
TABLE_SIZES: tuple[int, ...] = (251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521)
# Slots per backend at least: Maglev gives every backend floor(M/N) or ceil(M/N) slots,
# so 20 slots per backend keeps any backend's share within 5 % of the others'.
SLOTS_PER_BACKEND = 20


def table_size_for(backend_count: int) -> int:
    """The smallest of ``TABLE_SIZES`` with ``SLOTS_PER_BACKEND`` slots per backend."""
    for size in TABLE_SIZES:
        if size >= SLOTS_PER_BACKEND * backend_count:
            return size
    return TABLE_SIZES[-1]


@dataclass(frozen=True, slots=True)
class KernelOptions:
    """The kernel settings of one backend set, and what was wrong with its annotations."""

    selection: Selection = "maglev"
    forwarding: Forwarding = "nat"
    idle_seconds: int = DEFAULT_TCP_IDLE_SECONDS
    # A table size the Service pinned; None: ``table_size_for`` the candidates.
    table_size: int | None = None
    # Named counters of new flows per backend (opt-in: see KERNEL_BACKEND_COUNTERS).
    backend_counters: bool = False
    problems: tuple[str, ...] = ()


def kernel_options(backend_set: BackendSet) -> KernelOptions:
    """The kernel options of ``backend_set``, from its Service's annotations."""
    notes: Mapping[str, str] = dict(backend_set.kernel_annotations)
    problems: list[str] = []
    selection: Selection = "maglev"
    text = notes.get(KERNEL_SELECTION)
    if text is not None:
        if text in KERNEL_SELECTION_VALUES:
            selection = text  # type: ignore[assignment]
        else:
            problems.append(f"{KERNEL_SELECTION} {text!r} is not maglev, modulo or random")
    forwarding: Forwarding = "nat"
    text = notes.get(FORWARDING)
    if text is not None:
        if text in FORWARDING_VALUES:
            forwarding = text  # type: ignore[assignment]
        else:
            problems.append(f"{FORWARDING} {text!r} is not nat or dsr")
    idle = DEFAULT_TCP_IDLE_SECONDS if backend_set.protocol == "TCP" else DEFAULT_UDP_IDLE_SECONDS
    text = notes.get(FLOW_IDLE_TIMEOUT)
    if text is not None:
        if text.isdigit() and int(text) >= 1:
            idle = int(text)
        else:
            problems.append(f"{FLOW_IDLE_TIMEOUT} {text!r} is not a whole number of seconds >= 1")
    size: int | None = None
    text = notes.get(KERNEL_TABLE_SIZE)
    if text is not None:
        if text.isdigit() and is_prime(int(text)) and int(text) <= TABLE_SIZES[-1]:
            size = int(text)
        else:
            problems.append(f"{KERNEL_TABLE_SIZE} {text!r} is not a prime up to {TABLE_SIZES[-1]}")
    per_backend = False
    text = notes.get(KERNEL_BACKEND_COUNTERS)
    if text is not None:
        if text in ("true", "false"):
            per_backend = text == "true"
        else:
            problems.append(f"{KERNEL_BACKEND_COUNTERS} {text!r} is not true or false")
    return KernelOptions(selection, forwarding, idle, size, per_backend, tuple(problems))
