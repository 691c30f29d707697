"""From a DesiredConfig to seaway's nftables tables (pure): the kernel path for LoadBalancer
Services.

Two tables, both named ``seaway`` (the prefix); nothing else on the host is touched.

``ip seaway`` (NAT, and what every listener needs):

- ``reject-prerouting`` answers connections to a listener with no usable backend with
  a TCP reset (UDP: ICMP port unreachable), as seaway's proxy does;
- ``nat-prerouting`` jumps, through the ``nat-listeners`` verdict map, to one chain per
  listener, which drops sources outside loadBalancerSourceRanges, marks the flow for
  SNAT, gives its conntrack entry the Service's idle timeout (a ``ct timeout``
  object) and DNATs it to the backend its selection map names;
- ``nat-postrouting`` masquerades marked flows, so that replies come back through the
  load balancer, whose conntrack turns them back into the client's flow;
- ``count-prerouting`` and ``count-dnat`` count, in named counters, every packet from
  clients to a listener and each new flow per backend (after DNAT, keyed by the
  load-balancer address, the protocol and the chosen backend); see :mod:`.counters`.

``netdev seaway`` (direct server return; only while some listener uses it), on the
ingress hook of the host's interfaces, before the IP stack and conntrack:

- the ``dsr-listeners`` verdict map jumps to one chain per listener, which looks the
  flow up in its dynamic flow map (5-tuple -> node; an entry lives for the idle timeout
  after the flow's last packet); a new flow gets a node from the selection map; the
  node is remembered, and the packet, its destination still the load-balancer address,
  is sent to that node unchanged (``fwd``). The node's kube-proxy rules accept the
  address and the node answers the client directly.

Selection of a new flow's backend: ``maglev`` (a Maglev table of M slots in a map,
indexed by ``jhash(5-tuple) mod M``), ``modulo`` (``jhash(5-tuple) mod N``) or ``random``
(``numgen random mod N``). Established flows keep their backend whatever the set
becomes (conntrack for NAT, the flow map for DSR): removing a backend from the
selection map is draining.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from seaway.core.balancers.maglev import build_maglev_table
from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.dataplane.nftables.model import NftObject, Table, render_object
from seaway.dataplane.nftables.options import (
    UDP_UNREPLIED_SECONDS,
    KernelOptions,
    kernel_options,
    table_size_for,
)

TABLE_NAME = "seaway"
# The packet-mark bit that asks nat-postrouting to masquerade a flow. kube-proxy uses
# bits 14 and 15 (0x4000 masquerade, 0x8000 drop); seaway takes bit 13 next to them,
# and clears it again before the packet leaves, as kube-proxy does.
MASQUERADE_MARK = "0x00002000"
# jhash seed: fixed, so that every seaway instance behind the same ECMP router picks
# the same backend for the same flow (the DESIGN's deterministic hashing).
JHASH_SEED = "0x5ea3a7"
# Most flows one DSR flow map remembers per backend set; beyond it new flows are still
# forwarded, but not remembered (they follow the selection map on every packet).
DSR_FLOW_MAP_SIZE = 262144
# The ingress hook's priority: before anything at the default priority (0) sees it.
INGRESS_PRIORITY = -100
# reject-prerouting runs before DNAT (priority dstnat = -100).
REJECT_PRIORITY = "dstnat - 10"

KEY_TYPE = "ip daddr . meta l4proto . th dport"
# Objref maps name counters; "typeof" cannot declare them, so their keys are typed.
LISTENER_COUNTER_TYPE = "type ipv4_addr . inet_proto . inet_service : counter"
# load-balancer address . protocol . backend address . backend port: the listener's
# port is not in the key because conntrack's original port cannot be part of a
# concatenation (its size depends on the protocol) in nft 1.0.
BACKEND_COUNTER_TYPE = "type ipv4_addr . inet_proto . ipv4_addr . inet_service : counter"
# The chain that counts listeners' packets runs before anything else of seaway's;
# the one that counts backends' new flows runs after DNAT (priority dstnat), so that
# it sees the chosen backend as the destination.
COUNT_PRIORITY = "dstnat - 20"
COUNT_DNAT_PRIORITY = "dstnat + 10"
FLOW_KEY = "ip saddr . th sport . ip daddr . th dport"


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the data plane learned about the host: interfaces and routes (I/O elsewhere).

    ``ingress_devices``: interfaces whose ingress hook sees clients' packets (every
    interface that is up, but loopback). ``next_hop_devices``: for each DSR node
    address, the interface the host reaches it through.
    """

    ingress_devices: tuple[str, ...] = ()
    next_hop_devices: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The tables seaway wants, and problems by listener key (the listener is still
    served when it can be: a bad annotation falls back to its default).

    ``listener_counters``: listener key -> the id in its counters' names
    (``packets/ID``, ``flows/ID``, ``rejected/ID``). ``backend_counters``: (backend set
    key, backend key) -> the names of the counters of its new flows, one per listener.
    """

    tables: Mapping[str, Table]  # by family
    problems: Mapping[str, str]
    table_sizes: Mapping[str, int]  # Maglev table size by backend set key
    listener_counters: Mapping[str, str] = field(default_factory=dict)
    backend_counters: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


def listener_id(listener: Listener) -> str:
    """``198.18.0.99/tcp/80``: the listener in object names."""
    return f"{listener.address}/{listener.protocol.lower()}/{listener.port}"


def set_id(backend_set: BackendSet) -> str:
    """``default/web/80/tcp`` from ``default/web:80/TCP``."""
    service_port, _, protocol = backend_set.key.rpartition("/")
    service, _, port = service_port.rpartition(":")
    return f"{service}/{port}/{protocol.lower()}"


def mark_of(address: str) -> str:
    """The packet mark naming a DSR node: its IPv4 address as a number."""
    return f"0x{int(ipaddress.IPv4Address(address)):08x}"


def _key(listener: Listener) -> str:
    return f"{listener.address} . {listener.protocol.lower()} . {listener.port}"


def counter_name(what: str, listener: Listener) -> str:
    """``flows/198.18.0.99/tcp/80``: one of a listener's counters (``packets``,
    ``flows`` or ``rejected``)."""
    return f"{what}/{listener_id(listener)}"


def backend_counter_name(listener: Listener, backend: Backend) -> str:
    """``flows/198.18.0.99/tcp/80/10.0.0.5/8000``: new flows of a listener to a backend."""
    return f"flows/{listener_id(listener)}/{backend.address}/{backend.port}"


def _counters(*names: str) -> tuple[NftObject, ...]:
    return tuple(NftObject("counter", name) for name in names)


def _ranges_rule(listener: Listener) -> list[str]:
    ranges = [str(n) for n in listener.source_ranges if n.version == 4]
    rejected = f'counter name "{counter_name("rejected", listener)}"'
    if not listener.source_ranges:
        return []
    if not ranges:  # only IPv6 ranges: no IPv4 client may come in
        return [f"{rejected} drop"]
    return [f"ip saddr != {{ {', '.join(ranges)} }} {rejected} drop"]


def _hash(backend_set: BackendSet, modulus: int, flow_key: str) -> str:
    if backend_set.hash_on == "source-ip":
        return f"jhash ip saddr mod {modulus} seed {JHASH_SEED}"
    return f"jhash {flow_key} mod {modulus} seed {JHASH_SEED}"


@dataclass(frozen=True, slots=True)
class Selection:
    """One set's selection map: its name, slot -> backend, and the expression indexing it."""

    map_name: str
    slots: tuple[Backend, ...]
    expression: str
    description: str


def _selection(
    backend_set: BackendSet,
    options: KernelOptions,
    backends: Sequence[Backend],
    size: int,
    flow_key: str,
) -> Selection:
    by_key = {b.key: b for b in backends if b.weight > 0}
    ordered = [by_key[k] for k in sorted(by_key)]
    ident = set_id(backend_set)
    count = len(ordered)
    if options.selection == "maglev":
        table = build_maglev_table([(b.key, b.weight) for b in ordered], size)
        hashed = "the client address" if backend_set.hash_on == "source-ip" else "the 5-tuple"
        return Selection(
            f"maglev-{size}/{ident}",
            tuple(ordered[i] for i in table),
            _hash(backend_set, size, flow_key),
            f"Maglev: jhash of {hashed} mod {size} picks one of {size} slots; "
            f"{count} backend(s) share the slots evenly, and a change of the set moves "
            "only the slots of the backend that came or went",
        )
    if options.selection == "modulo":
        return Selection(
            f"modulo/{ident}",
            tuple(ordered),
            _hash(backend_set, count, flow_key),
            f"modulo: jhash of the 5-tuple mod {count}: any change of the backend count "
            "moves most flows to another backend",
        )
    return Selection(
        f"random/{ident}",
        tuple(ordered),
        f"numgen random mod {count}",
        f"random: numgen random mod {count}, drawn for every new flow",
    )


def _slot_type(value: str) -> tuple[str, ...]:
    return (f"typeof numgen random mod 2 : {value}",)


@dataclass(frozen=True, slots=True)
class ListenerRules:
    """What one listener adds to the tables: its objects, its entry in a dispatch map
    (or in ``no-endpoints``), the next hops it sends to, its Maglev table size and
    what was wrong with its annotations ("" when nothing)."""

    ip: tuple[NftObject, ...] = ()
    netdev: tuple[NftObject, ...] = ()
    nat: str = ""  # the nat-listeners key it adds ("" when none)
    dsr: str = ""  # the dsr-listeners key it adds
    no_endpoints: str = ""  # the no-endpoints key it adds
    next_hops: tuple[tuple[str, str], ...] = ()  # (node mark, verdict)
    # (backend key, backend-flows key, counter name) per candidate backend (NAT only).
    backend_counters: tuple[tuple[str, str, str], ...] = ()
    table_size: int | None = None  # its Maglev table's size (None: not Maglev)
    default_size: int | None = None  # the size it asked ``table_size`` about
    problem: str = ""


@dataclass(frozen=True, slots=True)
class _Cached:
    listener: Listener
    backend_set: BackendSet
    rules: ListenerRules


class RulesetCache:
    """The rules of each listener from the last build, reused by the next while the
    listener, its backend set and the host facts are the same (frozen dataclasses,
    compared by value): an endpoint change re-renders one Service, not all of them.

    Owned by one caller (a data plane) across its builds; not shared between threads.
    """

    def __init__(self) -> None:
        self.facts: HostFacts | None = None
        self.entries: dict[str, _Cached] = {}
        self.rendered = 0  # listeners rendered by the last build (the others were reused)

    def lookup(
        self,
        lkey: str,
        listener: Listener,
        backend_set: BackendSet,
        table_size: Callable[[str, int], int] | None,
    ) -> ListenerRules | None:
        entry = self.entries.get(lkey)
        if entry is None:
            return None
        if entry.listener is not listener and entry.listener != listener:
            return None
        if entry.backend_set is not backend_set and entry.backend_set != backend_set:
            return None
        rules = entry.rules
        # The size the caller gives may have changed (it never shrinks a running table).
        if rules.table_size is not None and rules.default_size is not None:
            wanted = (
                table_size(backend_set.key, rules.default_size)
                if table_size
                else rules.default_size
            )
            if wanted != rules.table_size:
                return None
        return rules


def build_ruleset(
    config: DesiredConfig,
    facts: HostFacts,
    table_size: Callable[[str, int], int] | None = None,
    cache: RulesetCache | None = None,
) -> Ruleset:
    """The tables that serve ``config``'s listeners, given what the host looks like.

    ``table_size(set_key, default)`` chooses each Maglev table's size (the data plane
    keeps sizes from shrinking while it runs); default: the annotation, else
    ``table_size_for`` the candidates. With ``cache``, listeners whose inputs did not
    change since the cache's last build reuse their rules (the same objects, which
    ``render_changes`` then skips without comparing their elements).
    """
    if cache is not None and cache.facts != facts:
        cache.facts = facts
        cache.entries.clear()
    ip: dict[str, NftObject] = {}
    nd: dict[str, NftObject] = {}
    problems: dict[str, str] = {}
    sizes: dict[str, int] = {}
    nat_listeners: dict[str, str] = {}
    dsr_listeners: dict[str, str] = {}
    no_endpoints: dict[str, str] = {}
    next_hops: dict[str, str] = {}
    listener_counters: dict[str, str] = {}
    listener_elements: dict[str, str] = {}
    rejected_elements: dict[str, str] = {}
    backend_elements: dict[str, str] = {}
    backend_counters: dict[tuple[str, str], tuple[str, ...]] = {}
    entries: dict[str, _Cached] = {}
    rendered = 0

    for lkey, listener in config.listeners.items():
        backend_set = config.backend_sets.get(listener.backend_set)
        if backend_set is None:
            continue
        rules = cache.lookup(lkey, listener, backend_set, table_size) if cache else None
        if rules is None:
            rules = listener_rules(listener, backend_set, facts, table_size)
            rendered += 1
        entries[lkey] = _Cached(listener, backend_set, rules)
        if rules.problem:
            problems[lkey] = rules.problem
        if rules.table_size is not None:
            sizes[backend_set.key] = rules.table_size
        for obj in rules.ip:
            ip[obj.name] = obj
        for obj in rules.netdev:
            nd[obj.name] = obj
        if rules.nat:
            nat_listeners[rules.nat] = f"goto nat/{listener_id(listener)}"
        if rules.dsr:
            dsr_listeners[rules.dsr] = f"goto dsr/{listener_id(listener)}"
        if rules.no_endpoints:
            no_endpoints[rules.no_endpoints] = ""
        next_hops.update(rules.next_hops)
        if any(o.kind == "counter" for o in rules.ip):
            key = _key(listener)
            listener_counters[lkey] = listener_id(listener)
            listener_elements[key] = f'"{counter_name("packets", listener)}"'
            rejected_elements[key] = f'"{counter_name("rejected", listener)}"'
        for backend_key, element, name in rules.backend_counters:
            # Two ports of one address and protocol sending to the same backend share
            # a key: the first listener (by key) counts the flows of both.
            if backend_elements.setdefault(element, f'"{name}"') != f'"{name}"':
                continue
            ckey = (backend_set.key, backend_key)
            backend_counters[ckey] = (*backend_counters.get(ckey, ()), name)
    if cache is not None:
        cache.entries = entries
        cache.rendered = rendered

    ip.update(_ip_skeleton(nat_listeners, no_endpoints))
    ip.update(_count_skeleton(listener_elements, rejected_elements, backend_elements))
    tables = {"ip": Table("ip", TABLE_NAME, ip)}
    if dsr_listeners and facts.ingress_devices:
        nd.update(_netdev_skeleton(facts.ingress_devices, dsr_listeners, next_hops))
        tables["netdev"] = Table("netdev", TABLE_NAME, nd)
    elif dsr_listeners:
        for lkey, listener in config.listeners.items():
            if _key(listener) in dsr_listeners:
                problems[lkey] = "direct server return: no network interface is up"
    return Ruleset(tables, problems, sizes, listener_counters, backend_counters)


def listener_rules(
    listener: Listener,
    backend_set: BackendSet,
    facts: HostFacts,
    table_size: Callable[[str, int], int] | None = None,
) -> ListenerRules:
    """The rules one listener needs (see :func:`build_ruleset`); pure."""
    if ":" in listener.address:
        return ListenerRules(problem="the nftables data plane serves IPv4 addresses only")
    options = kernel_options(backend_set)
    notes = list(options.problems)
    forwarding = options.forwarding
    if forwarding == "dsr" and backend_set.mode != "nodes":
        notes.append("direct server return needs seaway.io/backends: nodes; using NAT")
        forwarding = "nat"
    proto = listener.protocol.lower()
    key = _key(listener)
    lid = listener_id(listener)
    service = listener.service
    backends = [b for b in backend_set.backends if ":" not in b.address]
    if forwarding == "dsr":
        routed = [b for b in backends if b.address in facts.next_hop_devices]
        if len(routed) < len(backends):
            lost = ", ".join(b.address for b in backends if b not in routed)
            notes.append(f"no route to node(s) {lost}: left out")
        backends = routed
    problem = "; ".join(notes)
    # The listener's counters live as long as the listener (whatever its backends).
    counters = _counters(
        *(counter_name(what, listener) for what in ("packets", "flows", "rejected"))
    )
    # Per-backend counts only when the Service asks (every named counter slows every
    # nft transaction: see KERNEL_BACKEND_COUNTERS). Every candidate then gets a counter,
    # so that one taken out by a health check and put back keeps its count. DSR
    # forwards without conntrack: no per-backend count.
    counted = (
        []
        if forwarding == "dsr" or not options.backend_counters
        else [b for b in (backend_set.candidates or backend_set.backends) if ":" not in b.address]
    )
    backend_counters = tuple(
        (
            b.key,
            f"{listener.address} . {proto} . {b.address} . {b.port}",
            backend_counter_name(listener, b),
        )
        for b in counted
    )
    counters += _counters(*dict.fromkeys(name for _, _, name in backend_counters))
    if not backends:
        return ListenerRules(
            ip=counters, no_endpoints=key, problem=problem, backend_counters=backend_counters
        )
    default_size = options.table_size or table_size_for(len(backend_set.candidates or backends))
    size = table_size(backend_set.key, default_size) if table_size else default_size
    maglev_size = size if options.selection == "maglev" else None
    idle = options.idle_seconds
    title = (
        f"{service} port {listener.port}/{listener.protocol} at {listener.address}:{listener.port}"
    )
    if forwarding == "nat":
        selection = _selection(
            backend_set,
            options,
            backends,
            size,
            f"ip saddr . {proto} sport . ip daddr . {proto} dport",
        )
        timeout = f"idle-{idle}s/{proto}"
        chain = f"nat/{lid}"
        return ListenerRules(
            ip=(
                *counters,
                _ct_timeout(timeout, proto, idle),
                NftObject(
                    "map",
                    selection.map_name,
                    _slot_type(f"ip daddr . {proto} dport"),
                    {str(i): f"{b.address} . {b.port}" for i, b in enumerate(selection.slots)},
                    comment=_slot_comment(backend_set, selection),
                    service=service,
                ),
                NftObject(
                    "chain",
                    chain,
                    rules=(
                        *_ranges_rule(listener),
                        f"meta mark set meta mark or {MASQUERADE_MARK}",
                        # The flow's conntrack entry is new (unconfirmed) here, as the
                        # kernel requires for setting its timeout policy.
                        f'ct timeout set "{timeout}"',
                        f'counter name "{counter_name("flows", listener)}"',
                        f"meta l4proto {proto} counter dnat ip to {selection.expression} "
                        f"map @{selection.map_name}",
                    ),
                    comment=(
                        f"{title}: NAT",
                        selection.description + ".",
                        "The flow is DNATed to the chosen backend and SNATed to this host, "
                        "so that replies come back here;",
                        f"conntrack keeps the flow on its backend until it is idle {idle} s, "
                        "whatever the backend set becomes.",
                    ),
                    service=service,
                ),
            ),
            nat=key,
            backend_counters=backend_counters,
            table_size=maglev_size,
            default_size=default_size,
            problem=problem,
        )
    selection = _selection(backend_set, options, backends, size, FLOW_KEY)
    ident = set_id(backend_set)
    flows = f"flows-{idle}s/{ident}"
    objects = [
        *_counters(*(counter_name(what, listener) for what in ("packets", "flows", "rejected"))),
        NftObject(
            "map",
            flows,
            (
                f"typeof {FLOW_KEY} : meta mark",
                f"size {DSR_FLOW_MAP_SIZE}",
                "flags dynamic,timeout",
                f"timeout {idle}s",
            ),
            comment=(
                f"{service}: each flow's node (its address as the mark), "
                f"forgotten {idle} s after the flow's last packet",
            ),
            service=service,
        ),
        NftObject(
            "map",
            selection.map_name,
            _slot_type("meta mark"),
            {str(i): mark_of(b.address) for i, b in enumerate(selection.slots)},
            comment=_slot_comment(backend_set, selection),
            service=service,
        ),
    ]
    hops: list[tuple[str, str]] = []
    for backend in backend_set.candidates or backends:
        device = facts.next_hop_devices.get(backend.address)
        if device is None or ":" in backend.address:
            continue
        hop = f"to/{backend.address}"
        hops.append((mark_of(backend.address), f"goto {hop}"))
        objects.append(
            NftObject(
                "chain",
                hop,
                rules=(f'counter fwd ip to {backend.address} device "{device}"',),
                comment=(
                    f"to node {backend.name or backend.address}, unchanged "
                    "(destination: the load-balancer address)",
                ),
            )
        )
    objects.append(
        NftObject(
            "chain",
            f"dsr/{lid}",
            rules=(
                f'counter name "{counter_name("packets", listener)}"',
                *_ranges_rule(listener),
                "meta mark set 0",
                f"meta mark set {FLOW_KEY} map @{flows}",
                f'meta mark 0 counter name "{counter_name("flows", listener)}" '
                f"meta mark set {selection.expression} map @{selection.map_name}",
                f"update @{flows} {{ {FLOW_KEY} : meta mark }}",
                "counter meta mark vmap @next-hops",
                "meta mark set 0",
            ),
            comment=(
                f"{title}: direct server return",
                "A known flow goes to the node it went to (the flow map); a new one: "
                + selection.description
                + ".",
                "The packet keeps the load-balancer address as its destination; the "
                "node answers the client directly.",
            ),
            service=service,
        )
    )
    return ListenerRules(
        ip=counters,
        netdev=tuple(objects),
        dsr=key,
        next_hops=tuple(hops),
        table_size=maglev_size,
        default_size=default_size,
        problem=problem,
    )


def _ct_timeout(name: str, proto: str, idle: int) -> NftObject:
    if proto == "tcp":
        policy = f"policy = {{ established : {idle} }}"
    else:
        policy = f"policy = {{ unreplied : {min(idle, UDP_UNREPLIED_SECONDS)}, replied : {idle} }}"
    return NftObject(
        "ct timeout",
        name,
        (f"protocol {proto}", "l3proto ip", policy),
        comment=(f"idle timeout {idle} s for {proto.upper()} flows to load-balancer addresses",),
    )


def _slot_comment(backend_set: BackendSet, selection: Selection) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for backend in selection.slots:
        counts[backend.key] = counts.get(backend.key, 0) + 1
    total = len(selection.slots)
    shares = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    return (f"{backend_set.key}: slot -> backend ({total} slots: {shares})",)


def _ip_skeleton(
    nat_listeners: Mapping[str, str], no_endpoints: Mapping[str, str]
) -> dict[str, NftObject]:
    return {
        "nat-listeners": NftObject(
            "map",
            "nat-listeners",
            (f"typeof {KEY_TYPE} : verdict",),
            dict(nat_listeners),
            comment=("load-balancer address . protocol . port -> its chain (NAT)",),
        ),
        "no-endpoints": NftObject(
            "set",
            "no-endpoints",
            (f"typeof {KEY_TYPE}",),
            dict(no_endpoints),
            comment=("listeners without a usable backend: refused",),
        ),
        "reject-prerouting": NftObject(
            "chain",
            "reject-prerouting",
            (f"type filter hook prerouting priority {REJECT_PRIORITY}", "policy accept"),
            rules=(
                # "tcp dport", not "th dport": nft lists a reset rule that way, and must
                # read it back when a later transaction changes the table.
                "meta l4proto tcp ip daddr . meta l4proto . tcp dport @no-endpoints "
                "counter name ip daddr . meta l4proto . tcp dport map @listener-rejects "
                "reject with tcp reset",
                f"{KEY_TYPE} @no-endpoints counter name {KEY_TYPE} map @listener-rejects reject",
            ),
            comment=("no usable backend: TCP reset (UDP: port unreachable) at once",),
        ),
        "nat-prerouting": NftObject(
            "chain",
            "nat-prerouting",
            ("type nat hook prerouting priority dstnat", "policy accept"),
            rules=(f"{KEY_TYPE} vmap @nat-listeners",),
            comment=("new flows to a load-balancer address: to the listener's chain",),
        ),
        "nat-postrouting": NftObject(
            "chain",
            "nat-postrouting",
            ("type nat hook postrouting priority srcnat", "policy accept"),
            rules=(
                f"meta mark & {MASQUERADE_MARK} == 0 return",
                f"meta mark set meta mark xor {MASQUERADE_MARK}",
                "masquerade",
            ),
            comment=(
                "flows seaway DNATed leave with this host's address (replies come back "
                "here); the client's source port is kept when free",
            ),
        ),
    }


def _count_skeleton(
    listeners: Mapping[str, str], rejected: Mapping[str, str], backends: Mapping[str, str]
) -> dict[str, NftObject]:
    return {
        "listener-packets": NftObject(
            "map",
            "listener-packets",
            (LISTENER_COUNTER_TYPE,),
            dict(listeners),
            comment=("load-balancer address . protocol . port -> its packet counter",),
        ),
        "listener-rejects": NftObject(
            "map",
            "listener-rejects",
            (LISTENER_COUNTER_TYPE,),
            dict(rejected),
            comment=("load-balancer address . protocol . port -> its counter of refusals",),
        ),
        "backend-flows": NftObject(
            "map",
            "backend-flows",
            (BACKEND_COUNTER_TYPE,),
            dict(backends),
            comment=(
                "load-balancer address . protocol . backend address . port -> the counter "
                "of the listener's new flows to that backend",
            ),
        ),
        "count-prerouting": NftObject(
            "chain",
            "count-prerouting",
            (f"type filter hook prerouting priority {COUNT_PRIORITY}", "policy accept"),
            rules=(f"counter name {KEY_TYPE} map @listener-packets",),
            comment=("every packet from clients to a listener, with its bytes",),
        ),
        "count-dnat": NftObject(
            "chain",
            "count-dnat",
            (f"type filter hook prerouting priority {COUNT_DNAT_PRIORITY}", "policy accept"),
            rules=(
                "ct state new counter name ct original ip daddr . meta l4proto . "
                "ip daddr . th dport map @backend-flows",
            ),
            comment=("new flows after DNAT: one count for the backend the selection chose",),
        ),
    }


def _netdev_skeleton(
    devices: Sequence[str], dsr_listeners: Mapping[str, str], next_hops: Mapping[str, str]
) -> dict[str, NftObject]:
    names = ", ".join(f'"{d}"' for d in devices)
    return {
        "dsr-listeners": NftObject(
            "map",
            "dsr-listeners",
            (f"typeof {KEY_TYPE} : verdict",),
            dict(dsr_listeners),
            comment=("load-balancer address . protocol . port -> its chain (DSR)",),
        ),
        "next-hops": NftObject(
            "map",
            "next-hops",
            ("typeof meta mark : verdict",),
            dict(next_hops),
            comment=("node mark (its address) -> the chain that sends to it",),
        ),
        "ingress": NftObject(
            "chain",
            "ingress",
            (
                f"type filter hook ingress devices = {{ {names} }} priority {INGRESS_PRIORITY}",
                "policy accept",
            ),
            rules=(f"meta protocol ip {KEY_TYPE} vmap @dsr-listeners",),
            comment=("packets as they arrive, before the IP stack: DSR listeners",),
        ),
    }


def service_rules(ruleset: Ruleset, service: str, elements_shown: int = 8) -> str:
    """The rules serving ``service`` (``namespace/name``) as nft text with comments.

    Long maps show their first ``elements_shown`` elements; the comment above says how
    the slots are shared.
    """
    lines: list[str] = []
    for table in ruleset.tables.values():
        objects = [o for o in table.objects.values() if o.service == service]
        dispatch = [
            (o.name, k, v)
            for o in table.objects.values()
            if o.kind == "map"
            for k, v in o.elements.items()
            if v.startswith("goto ") and any(v == f"goto {x.name}" for x in objects)
        ]
        if not objects:
            continue
        lines.append(f"table {table.ref}")
        for name, key, verdict in dispatch:
            lines.append(f"  # in map {name}: {key} : {verdict}")
        for obj in objects:
            shown = dict(list(obj.elements.items())[:elements_shown])
            short = NftObject(obj.kind, obj.name, obj.declaration, shown, obj.rules, obj.comment)
            body = render_object(short)
            if len(obj.elements) > elements_shown:
                body.insert(-2, f"      ... {len(obj.elements) - elements_shown} more elements")
            lines += body
    return "\n".join(lines)
