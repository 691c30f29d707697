"""The nftables data plane: LoadBalancer Services served by the kernel, seaway only programs it.

``NftablesDataPlane`` owns seaway's tables (``ip seaway`` and, for direct server
return, ``netdev seaway``) and nothing else. The first ``apply`` replaces them whole (a
full resync that also clears what an earlier run left); every later one writes only
the differences, in one ``nft -f`` transaction, so that an endpoint change rewrites
selection-map elements and nothing else. ``close`` deletes the tables and puts back
the forwarding sysctl if seaway turned it on.

``counters`` answers from the last read of the kernel's named counters (one
``nft -j list counters``), and starts the next read in the plane's reader thread when
the last one ended more than ``COUNTERS_MAX_AGE`` seconds ago: nft loads seaway's
whole ruleset to list them (0.8 s at 1,000 Services), which must not stall the event
loop that serves the admin API and the proxies. The admin API, ``/metrics`` and
``seaway top`` share the cached values, which are therefore up to a read behind.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from seaway.core.config import DesiredConfig
from seaway.dataplane.base import ApplyResult, Counters
from seaway.dataplane.nftables.counters import kernel_counters, parse_counters
from seaway.dataplane.nftables.host import (
    NftablesUnavailable,
    NftError,
    host_facts,
    list_counters,
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
# Counters are read from the kernel at most this often (seconds), whoever asks.
COUNTERS_MAX_AGE = 1.0


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
        self._counters = Counters()
        # time.monotonic() when the last read ended; None: read at the next ask.
        self._counters_read_at: float | None = None
        self._reading = False
        # One reader thread, owned here and shut down by close().
        self._reader: ThreadPoolExecutor | None = None

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
        self._counters_read_at = None  # new listeners and backends: read again
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
        """The kernel's counts per listener and per backend (see ``.counters``) as last
        read; starts another read when that one is older than ``COUNTERS_MAX_AGE`` s.
        Never blocks on nft and never raises."""
        ruleset = self.ruleset
        if ruleset is None or self._reading:
            return self._counters
        read_at = self._counters_read_at
        if read_at is not None and time.monotonic() - read_at < COUNTERS_MAX_AGE:
            return self._counters
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="seaway-nft-counters")
        self._reading = True
        served = frozenset(self._served)
        self._reader.submit(self._read_counters, ruleset, served)
        return self._counters

    def _read_counters(self, ruleset: Ruleset, served: frozenset[str]) -> None:
        # In the reader thread; the event loop only swaps in the finished result.
        try:
            values = parse_counters(list_counters(self.prefix))
            listeners = {k: v for k, v in ruleset.listener_counters.items() if k in served}
            # Values by the rules they were read with, even if newer rules came meanwhile
            # (they apply at the next read); none once the plane is closed.
            if self.ruleset is not None:
                self._counters = kernel_counters(values, listeners, ruleset.backend_counters)
        except (NftError, OSError, subprocess.TimeoutExpired) as exc:
            log.warning("cannot read the kernel's counters: %s", exc)
        finally:
            self._counters_read_at = time.monotonic()
            self._reading = False

    def service_rules(self, service: str) -> str:
        """The rules serving ``service`` as loaded, with comments ("" when none)."""
        if self.ruleset is None:
            return ""
        return service_rules(self.ruleset, service)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.shutdown(wait=True)  # a read in progress ends within its timeout
            self._reader = None
        script = render_transaction(self._tables, {}, TABLE_NAME)
        if script:
            try:
                run_nft(self.prefix, script)
            except NftError as exc:
                log.error("cannot remove seaway's nftables tables: %s", exc)
        self._tables = None
        self.ruleset = None
        self._counters = Counters()
        self._counters_read_at = None
        if self._forward_before is not None and self._forward_before != "1":
            try:
                write_sysctl(self.prefix, IP_FORWARD, self._forward_before)
            except NftError as exc:
                log.error("cannot restore %s: %s", IP_FORWARD, exc)
        self._forward_before = None
