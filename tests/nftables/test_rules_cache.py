"""Incremental rule builds: a RulesetCache re-renders only the listeners whose inputs
changed, and the tables come out exactly as a build from scratch makes them."""

from __future__ import annotations

import ipaddress

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.dataplane.nftables.model import render_transaction
from seaway.dataplane.nftables.rules import HostFacts, RulesetCache, build_ruleset

NODES = tuple(
    Backend(f"198.18.0.{11 + i}", 30080, name=f"node-{i}", node=f"node-{i}") for i in range(3)
)
FACTS = HostFacts(("eth0",), {n.address: "eth0" for n in NODES})
NOTES = {
    "web": {},
    "dsr": {"seaway.io/forwarding": "dsr"},
    "mod": {"seaway.io/kernel-selection": "modulo"},
    "rnd": {"seaway.io/kernel-selection": "random", "seaway.io/flow-idle-timeout": "7"},
    "bad": {"seaway.io/kernel-selection": "fastest"},
}


def _config(backends: dict[str, tuple[Backend, ...]] | None = None) -> DesiredConfig:
    """Every set and listener built anew, as the planner does on each change."""
    sets: dict[str, BackendSet] = {}
    listeners: dict[str, Listener] = {}
    for i, (name, notes) in enumerate(sorted(NOTES.items())):
        s = BackendSet(
            key=f"default/{name}:80/TCP",
            service=f"default/{name}",
            port_name="http",
            protocol="TCP",
            backends=(backends or {}).get(name, NODES),
            candidates=NODES,
            mode="nodes",
            kernel_annotations=tuple(sorted(notes.items())),
        )
        sets[s.key] = s
        listener = Listener(
            "TCP",
            f"198.18.0.{99 + i}",
            80,
            s.service,
            "http",
            s.key,
            source_ranges=(ipaddress.ip_network("203.0.113.0/24"),),
        )
        listeners[listener.key] = listener
    return DesiredConfig(listeners=listeners, backend_sets=sets)


def _script(old: DesiredConfig | None, new: DesiredConfig, cache: RulesetCache | None) -> str:
    before = build_ruleset(old, FACTS) if old is not None else None
    after = build_ruleset(new, FACTS, cache=cache)
    return render_transaction(before.tables if before else None, after.tables, "seaway")


def test_one_endpoint_change_renders_one_listener() -> None:
    cache = RulesetCache()
    first = build_ruleset(_config(), FACTS, cache=cache)
    assert cache.rendered == len(NOTES)
    second = build_ruleset(_config({"web": NODES[1:]}), FACTS, cache=cache)
    assert cache.rendered == 1
    # Unchanged listeners' objects are the very same (render_changes skips them).
    same = [
        n for n, o in second.tables["ip"].objects.items() if first.tables["ip"].objects.get(n) is o
    ]
    # Sorted by name: bad .99, dsr .100, mod .101, rnd .102, web .103.
    assert {"nat/198.18.0.99/tcp/80", "nat/198.18.0.101/tcp/80", "nat/198.18.0.102/tcp/80"} <= (
        set(same)
    )
    assert "nat/198.18.0.103/tcp/80" not in same
    assert not any(n.endswith("/default/web/80/tcp") for n in same)
    script = render_transaction(first.tables, second.tables, "seaway")
    assert [line.split()[:2] for line in script.splitlines()] == [
        ["delete", "element"],
        ["add", "element"],
    ]
    assert build_ruleset(_config({"web": NODES[1:]}), FACTS, cache=cache).tables == (second.tables)
    assert cache.rendered == 0


def test_cached_builds_equal_builds_from_scratch() -> None:
    cache = RulesetCache()
    steps = [
        _config(),
        _config({"web": NODES[1:], "dsr": NODES[:1]}),
        _config({"web": NODES[1:], "dsr": NODES[:1], "mod": ()}),
        _config(),
    ]
    previous: DesiredConfig | None = None
    for config in steps:
        assert _script(previous, config, cache) == _script(previous, config, None)
        assert build_ruleset(config, FACTS, cache=cache) == build_ruleset(config, FACTS)
        previous = config


def test_new_facts_or_a_grown_table_render_again() -> None:
    cache = RulesetCache()
    build_ruleset(_config(), FACTS, cache=cache)
    other = HostFacts(("eth0", "eth1"), {n.address: "eth1" for n in NODES})
    fresh = build_ruleset(_config(), other, cache=cache)
    assert cache.rendered == len(NOTES)
    assert 'device "eth1"' in render_transaction(None, fresh.tables, "seaway")

    def grown(key: str, default: int) -> int:
        return 509 if key == "default/web:80/TCP" else default

    sized = build_ruleset(_config(), other, grown, cache)
    assert cache.rendered == 1  # only web's table size changed
    assert sized.table_sizes["default/web:80/TCP"] == 509
    assert sized == build_ruleset(_config(), other, grown)
