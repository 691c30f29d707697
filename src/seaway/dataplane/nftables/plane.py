"""The nftables data plane: LoadBalancer Services served by the kernel, seaway only programs it.

``NftablesDataPlane`` owns seaway's tables (``ip seaway`` and, for direct server
return, ``netdev seaway``) and nothing else. The first ``apply`` replaces them whole (a
full resync that also clears what an earlier run left); every later one writes only
the differences, in one ``nft -f`` transaction, so that an endpoint change rewrites
selection-map elements and nothing else. ``close`` deletes the tables and puts back
the forwarding sysctl if seaway turned it on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from seaway.core.config import DesiredConfig
from seaway.dataplane.base import ApplyResult, Counters, ListenerCounters
from seaway.dataplane.nftables.host import (
    NftablesUnavailable,
    NftError,
    host_facts,
    read_sysctl,
    run_nft,
    why_unavailable,
    write_sysctl,
)
from seaway.dataplane.nftables.model import Table, render_transaction
from seaway.dataplane.nftables.options import kernel_options
from seaway.dataplane.nftables.rules import (
    TABLE_NAME,
    Ruleset,
    RulesetCache,
    build_ruleset,
    service_rules,
)

log = logging.getLogger("seaway.nftables")

# NAT forwards packets between interfaces: the host must route (RFC 1812 router).
IP_FORWARD = "net.ipv4.ip_forward"


class NftablesDataPlane:
    """Serves ``DesiredConfig.listeners`` through nftables (see the module docstring).

    ``prefix`` runs every command inside a network namespace (``ip netns exec NS``);
    empty: the namespace seaway runs in. Raises NftablesUnavailable when not root.
    """

    def __init__(self, *, prefix: Sequence[str] = (), check_host: bool = True) -> None:
        if check_host:
            why = why_unavailable()
            if why:
                raise NftablesUnavailable(why)
        self.prefix = tuple(prefix)
        self.ruleset: Ruleset | None = None
        self.last_script = ""
        self._tables: Mapping[str, Table] | None = None
        self._sizes: dict[str, int] = {}
        # Rules of unchanged listeners are reused: an endpoint change renders one Service.
        self._rules_cache = RulesetCache()
        self._forward_before: str | None = None
        self._lock = asyncio.Lock()
        self._served: tuple[str, ...] = ()

    async def apply(self, config: DesiredConfig) -> ApplyResult:
        async with self._lock:
            return await asyncio.to_thread(self._apply, config)

    def _size(self, set_key: str, default: int) -> int:
        # Never shrink while running: a smaller table would move every idle flow.
        return max(default, self._sizes.get(set_key, 0))

    def _apply(self, config: DesiredConfig) -> ApplyResult:
        hops = [
            b.address
            for listener in config.listeners.values()
            if (s := config.backend_sets.get(listener.backend_set)) is not None
            and kernel_options(s).forwarding == "dsr"
            for b in (s.candidates or s.backends)
        ]
        facts = host_facts(self.prefix, hops)
        ruleset = build_ruleset(config, facts, self._size, self._rules_cache)
        errors = dict(ruleset.problems)
        if ruleset.tables["ip"].objects["nat-listeners"].elements:
            self._ensure_forwarding()
        script = render_transaction(self._tables, ruleset.tables, TABLE_NAME)
        if script:
            try:
                run_nft(self.prefix, script)
            except NftError as exc:
                if self._tables is None:
                    return ApplyResult(
                        {k: f"nftables refused the rules: {exc}" for k in config.listeners}
                    )
                # The kernel is not what we think (someone changed our table): resync.
                log.warning("incremental nftables update failed (%s); full resync", exc)
                script = render_transaction(None, ruleset.tables, TABLE_NAME)
                try:
                    run_nft(self.prefix, script)
                except NftError as again:
                    return ApplyResult(
                        {k: f"nftables refused the rules: {again}" for k in config.listeners}
                    )
        self._tables = ruleset.tables
        self.ruleset = ruleset
        self.last_script = script
        self._sizes.update(ruleset.table_sizes)
        self._served = tuple(
            k
            for k in config.listeners
            if k not in errors or not errors[k].startswith("the nftables data plane serves")
        )
        return ApplyResult(errors)

    def _ensure_forwarding(self) -> None:
        if self._forward_before is not None:
            return
        try:
            before = read_sysctl(self.prefix, IP_FORWARD)
            if before != "1":
                write_sysctl(self.prefix, IP_FORWARD, "1")
                log.info("turned on %s (the load balancer forwards NAT flows)", IP_FORWARD)
            self._forward_before = before
        except NftError as exc:
            log.error("cannot turn on %s: %s; NAT flows will not be forwarded", IP_FORWARD, exc)

    def counters(self) -> Counters:
        """Listener entries only: packet counts live in the kernel (``nft list table``)."""
        return Counters(listeners={key: ListenerCounters() for key in self._served})

    def service_rules(self, service: str) -> str:
        """The rules serving ``service`` as loaded, with comments ("" when none)."""
        if self.ruleset is None:
            return ""
        return service_rules(self.ruleset, service)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        script = render_transaction(self._tables, {}, TABLE_NAME)
        if script:
            try:
                run_nft(self.prefix, script)
            except NftError as exc:
                log.error("cannot remove seaway's nftables tables: %s", exc)
        self._tables = None
        self.ruleset = None
        if self._forward_before is not None and self._forward_before != "1":
            try:
                write_sysctl(self.prefix, IP_FORWARD, self._forward_before)
            except NftError as exc:
                log.error("cannot restore %s: %s", IP_FORWARD, exc)
        self._forward_before = None
