"""Reading the kernel's counters (pure): ``nft -j list counters`` as nft 1.0.6 prints it
on this machine, mapped into ``Counters``; and the counter objects the rules keep."""

from __future__ import annotations

from dataclasses import replace

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.dataplane.nftables.counters import CounterValue, kernel_counters, parse_counters
from seaway.dataplane.nftables.model import render_transaction
from seaway.dataplane.nftables.rules import HostFacts, build_ruleset
from seaway.model.annotations import KERNEL_BACKEND_COUNTERS

# `nft -j list counters` (nftables v1.0.6) with two seaway tables and a table of
# someone else's that happens to use the same counter name.
CAPTURED = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", '
    '"json_schema_version": 1}}, {"counter": {"family": "ip", "name": '
    '"packets/198.18.0.99/tcp/80", "table": "seaway", "handle": 1, "packets": 212, "bytes": '
    '14630}}, {"counter": {"family": "ip", "name": "flows/198.18.0.99/tcp/80", "table": '
    '"seaway", "handle": 2, "packets": 40, "bytes": 2400}}, {"counter": {"family": "ip", '
    '"name": "rejected/198.18.0.99/tcp/80", "table": "seaway", "handle": 3, "packets": 0, '
    '"bytes": 0}}, {"counter": {"family": "ip", "name": '
    '"flows/198.18.0.99/tcp/80/10.0.0.5/8000", "table": "seaway", "handle": 4, "packets": 23, '
    '"bytes": 1380}}, {"counter": {"family": "ip", "name": '
    '"flows/198.18.0.99/tcp/80/10.0.0.6/8000", "table": "seaway", "handle": 5, "packets": 17, '
    '"bytes": 1020}}, {"counter": {"family": "netdev", "name": "packets/198.18.0.100/udp/53", '
    '"table": "seaway", "handle": 1, "packets": 9, "bytes": 720}}, {"counter": {"family": '
    '"ip", "name": "packets/198.18.0.99/tcp/80", "table": "other", "handle": 1, "packets": 5, '
    '"bytes": 500}}]}'
)
WEB = "TCP/198.18.0.99:80"
DNS = "UDP/198.18.0.100:53"
SET = "default/web:80/TCP"


def test_parse_reads_seaway_tables_only() -> None:
    values = parse_counters(CAPTURED)
    assert values["packets/198.18.0.99/tcp/80"] == CounterValue(212, 14630)  # not "other"'s
    assert values["packets/198.18.0.100/udp/53"] == CounterValue(9, 720)  # netdev
    assert len(values) == 6


def test_counters_map_like_the_proxy_fills_them_and_missing_ones_are_zero() -> None:
    counters = kernel_counters(
        parse_counters(CAPTURED),
        {WEB: "198.18.0.99/tcp/80", DNS: "198.18.0.100/udp/53"},
        {
            (SET, "10.0.0.5:8000"): ("flows/198.18.0.99/tcp/80/10.0.0.5/8000",),
            (SET, "10.0.0.6:8000"): ("flows/198.18.0.99/tcp/80/10.0.0.6/8000",),
            (SET, "10.0.0.7:8000"): ("flows/198.18.0.99/tcp/80/10.0.0.7/8000",),  # missing
        },
    )
    web = counters.listeners[WEB]
    assert (web.total, web.rejected, web.active, web.packets, web.bytes) == (40, 0, 0, 212, 14630)
    dns = counters.listeners[DNS]  # flows/ and rejected/ are missing: 0
    assert (dns.total, dns.rejected, dns.packets) == (0, 0, 9)
    totals = {key[1]: c.total for key, c in counters.backends.items()}
    assert totals == {"10.0.0.5:8000": 23, "10.0.0.6:8000": 17, "10.0.0.7:8000": 0}
    assert sum(totals.values()) == web.total
    assert all(c.active == 0 and c.bytes_to_backend == 0 for c in counters.backends.values())


def test_a_counter_in_both_tables_is_added_up() -> None:
    text = (
        '{"nftables": [{"counter": {"family": "ip", "name": "packets/a", "table": "seaway", '
        '"packets": 2, "bytes": 20}}, {"counter": {"family": "netdev", "name": "packets/a", '
        '"table": "seaway", "packets": 3, "bytes": 30}}]}'
    )
    assert parse_counters(text) == {"packets/a": CounterValue(5, 50)}


def test_odd_output_never_raises() -> None:
    for text in ("", "not json", "[]", '{"nftables": 3}', '{"nftables": [1, {"counter": 2}]}'):
        assert parse_counters(text) == {}
    odd = (
        '{"nftables": [{"counter": {"name": "x", "table": "seaway", "packets": "7", '
        '"bytes": -1}}, {"counter": {"name": 5, "table": "seaway", "packets": 1}}, '
        '{"counter": {"name": "y", "table": "seaway", "packets": true}}]}'
    )
    assert parse_counters(odd) == {"x": CounterValue(0, 0), "y": CounterValue(0, 0)}


PODS = tuple(Backend(f"10.0.0.{5 + i}", 8000, name=f"pod-{i}") for i in range(3))


def _config(
    backends: tuple[Backend, ...], second_port: bool = False, *, per_backend: bool = True
) -> DesiredConfig:
    sets = {}
    listeners = {}
    for port in (80, 81) if second_port else (80,):
        s = BackendSet(
            key=f"default/web:{port}/TCP",
            service="default/web",
            port_name="http",
            protocol="TCP",
            backends=backends,
            candidates=PODS,
            kernel_annotations=((KERNEL_BACKEND_COUNTERS, "true"),) if per_backend else (),
        )
        sets[s.key] = s
        listener = Listener("TCP", "198.18.0.99", port, s.service, "http", s.key)
        listeners[listener.key] = listener
    return DesiredConfig(listeners=listeners, backend_sets=sets)


def test_counters_outlive_backend_changes_and_an_empty_set() -> None:
    full = build_ruleset(_config(PODS), HostFacts())
    assert full.listener_counters == {WEB: "198.18.0.99/tcp/80"}
    assert full.backend_counters[(SET, "10.0.0.6:8000")] == (
        "flows/198.18.0.99/tcp/80/10.0.0.6/8000",
    )
    flows = full.tables["ip"].objects["backend-flows"].elements
    assert (
        flows["198.18.0.99 . tcp . 10.0.0.6 . 8000"] == '"flows/198.18.0.99/tcp/80/10.0.0.6/8000"'
    )
    # A backend leaves the selection (unhealthy), then every backend: counters stay.
    for backends in (PODS[:2], ()):
        after = build_ruleset(_config(backends), HostFacts())
        script = render_transaction(full.tables, after.tables, "seaway")
        assert "counter" not in " ".join(
            line for line in script.splitlines() if line.startswith(("delete", "add counter"))
        )
        assert after.backend_counters == full.backend_counters
    # A candidate that goes for good takes its counter with it (a new one starts at 0).
    fewer = replace(
        _config(PODS[:2]),
        backend_sets={
            k: replace(s, candidates=PODS[:2]) for k, s in _config(PODS[:2]).backend_sets.items()
        },
    )
    script = render_transaction(full.tables, build_ruleset(fewer, HostFacts()).tables, "seaway")
    assert "delete counter ip seaway flows/198.18.0.99/tcp/80/10.0.0.7/8000" in script


def test_two_ports_to_one_backend_count_under_the_first() -> None:
    ruleset = build_ruleset(_config(PODS, second_port=True), HostFacts())
    assert ruleset.backend_counters[(SET, "10.0.0.5:8000")] == (
        "flows/198.18.0.99/tcp/80/10.0.0.5/8000",
    )
    assert ("default/web:81/TCP", "10.0.0.5:8000") not in ruleset.backend_counters


def test_per_backend_counters_only_where_the_service_asks() -> None:
    # Each named counter makes every nft transaction slower (nft reads every named
    # object first): per-backend ones are opt-in, per-listener ones always there.
    plain = build_ruleset(_config(PODS, per_backend=False), HostFacts())
    assert plain.listener_counters == {WEB: "198.18.0.99/tcp/80"}
    assert plain.backend_counters == {}
    names = {o.name for o in plain.tables["ip"].objects.values() if o.kind == "counter"}
    assert names == {f"{what}/198.18.0.99/tcp/80" for what in ("packets", "flows", "rejected")}
    counted = build_ruleset(_config(PODS), HostFacts())
    assert len(counted.backend_counters) == len(PODS)
