"""The rule renderer (pure): golden text, element-only updates, and nft's own check."""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import replace

import pytest

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.dataplane.nftables.host import NftError, check_nft, run_nft
from seaway.dataplane.nftables.model import render_transaction
from seaway.dataplane.nftables.options import kernel_options, table_size_for
from seaway.dataplane.nftables.rules import HostFacts, build_ruleset, service_rules

WHY_NOT = (
    "needs root"
    if os.geteuid() != 0
    else "needs nft and ip"
    if not (shutil.which("nft") and shutil.which("ip"))
    else ""
)
needs_netns = pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "ok")

NODES = (
    Backend("198.18.0.11", 30080, name="node-a", node="node-a"),
    Backend("198.18.0.12", 30080, name="node-b", node="node-b"),
)
FACTS = HostFacts(("eth0",), {"198.18.0.11": "eth0", "198.18.0.12": "eth0"})


def _set(name: str, notes: dict[str, str], backends: tuple[Backend, ...] = NODES) -> BackendSet:
    return BackendSet(
        key=f"default/{name}:80/TCP",
        service=f"default/{name}",
        port_name="http",
        protocol="TCP",
        backends=backends,
        candidates=NODES,
        mode="nodes",
        kernel_annotations=tuple(sorted(notes.items())),
    )


def _config(**notes: dict[str, str]) -> DesiredConfig:
    sets = {}
    listeners = {}
    for i, (name, n) in enumerate(sorted(notes.items())):
        s = _set(name, n)
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


def test_nat_listener_chain_reads_as_documented() -> None:
    ruleset = build_ruleset(_config(web={"seaway.io/flow-idle-timeout": "5"}), FACTS)
    chain = ruleset.tables["ip"].objects["nat/198.18.0.99/tcp/80"]
    assert chain.rules == (
        'ip saddr != { 203.0.113.0/24 } counter name "rejected/198.18.0.99/tcp/80" drop',
        "meta mark set meta mark or 0x00002000",
        'ct timeout set "idle-5s/tcp"',
        'counter name "flows/198.18.0.99/tcp/80"',
        "meta l4proto tcp counter dnat ip to jhash ip saddr . tcp sport . ip daddr . tcp dport "
        "mod 251 seed 0x5ea3a7 map @maglev-251/default/web/80/tcp",
    )
    assert chain.comment[0] == "default/web port 80/TCP at 198.18.0.99:80: NAT"
    slots = ruleset.tables["ip"].objects["maglev-251/default/web/80/tcp"].elements
    assert len(slots) == 251
    assert {v for v in slots.values()} == {"198.18.0.11 . 30080", "198.18.0.12 . 30080"}
    assert "netdev" not in ruleset.tables


def test_dsr_forwards_unchanged_to_the_node_and_remembers_the_flow() -> None:
    ruleset = build_ruleset(_config(web={"seaway.io/forwarding": "dsr"}), FACTS)
    objects = ruleset.tables["netdev"].objects
    assert objects["to/198.18.0.11"].rules == ('counter fwd ip to 198.18.0.11 device "eth0"',)
    assert objects["next-hops"].elements == {
        "0xc612000b": "goto to/198.18.0.11",
        "0xc612000c": "goto to/198.18.0.12",
    }
    assert "timeout 350s" in objects["flows-350s/default/web/80/tcp"].declaration
    assert objects["dsr-listeners"].elements == {
        "198.18.0.99 . tcp . 80": "goto dsr/198.18.0.99/tcp/80"
    }


def test_selections_and_bad_annotations() -> None:
    modulo = build_ruleset(_config(web={"seaway.io/kernel-selection": "modulo"}), FACTS)
    rule = modulo.tables["ip"].objects["nat/198.18.0.99/tcp/80"].rules[-1]
    assert "jhash ip saddr . tcp sport . ip daddr . tcp dport mod 2 " in rule
    random = build_ruleset(_config(web={"seaway.io/kernel-selection": "random"}), FACTS)
    assert (
        "numgen random mod 2 map @random/"
        in (random.tables["ip"].objects["nat/198.18.0.99/tcp/80"].rules[-1])
    )
    bad = build_ruleset(_config(web={"seaway.io/kernel-selection": "fastest"}), FACTS)
    assert "is not maglev, modulo or random" in bad.problems["TCP/198.18.0.99:80"]
    assert kernel_options(_set("x", {"seaway.io/kernel-table-size": "1000"})).problems


def test_dsr_needs_nodes_mode() -> None:
    config = _config(web={"seaway.io/forwarding": "dsr"})
    sets = {k: replace(s, mode="pods") for k, s in config.backend_sets.items()}
    ruleset = build_ruleset(replace(config, backend_sets=sets), FACTS)
    assert "using NAT" in ruleset.problems["TCP/198.18.0.99:80"]
    assert "nat/198.18.0.99/tcp/80" in ruleset.tables["ip"].objects


def test_table_size_follows_the_backend_count() -> None:
    assert table_size_for(3) == 251
    assert table_size_for(13) == 509
    assert table_size_for(10_000) == 65521


def test_endpoint_change_rewrites_only_map_elements() -> None:
    config = _config(web={}, dsr={"seaway.io/forwarding": "dsr"})
    before = build_ruleset(config, FACTS)
    sets = {k: replace(s, backends=NODES[:1]) for k, s in config.backend_sets.items()}
    after = build_ruleset(replace(config, backend_sets=sets), FACTS)
    script = render_transaction(before.tables, after.tables, "seaway")
    verbs = {" ".join(line.split()[:2]) for line in script.splitlines()}
    assert verbs == {"delete element", "add element"}
    assert render_transaction(after.tables, after.tables, "seaway") == ""


def test_explain_text_has_comments_and_shortened_maps() -> None:
    ruleset = build_ruleset(_config(web={}), FACTS)
    text = service_rules(ruleset, "default/web")
    assert "# default/web port 80/TCP at 198.18.0.99:80: NAT" in text
    assert "... 243 more elements" in text
    assert "in map nat-listeners: 198.18.0.99 . tcp . 80 : goto nat/198.18.0.99/tcp/80" in text


@needs_netns
def test_nft_accepts_every_script(netns: str) -> None:
    prefix = ("ip", "netns", "exec", netns)
    config = _config(
        web={}, dsr={"seaway.io/forwarding": "dsr"}, rnd={"seaway.io/kernel-selection": "random"}
    )
    first = build_ruleset(config, FACTS)
    start = render_transaction(None, first.tables, "seaway")
    check_nft(prefix, start)
    run_nft(prefix, start)
    sets = {k: replace(s, backends=NODES[1:]) for k, s in config.backend_sets.items()}
    second = build_ruleset(replace(config, backend_sets=sets), FACTS)
    run_nft(prefix, render_transaction(first.tables, second.tables, "seaway"))
    # A listener and its Service go: objects are deleted in an order nft accepts.
    fewer = {k: v for k, v in config.listeners.items() if "198.18.0.99" not in k}
    third = build_ruleset(replace(config, listeners=fewer, backend_sets=sets), FACTS)
    run_nft(prefix, render_transaction(second.tables, third.tables, "seaway"))
    run_nft(prefix, render_transaction(third.tables, {}, "seaway"))
    with pytest.raises(NftError):
        run_nft(prefix, "list table ip seaway\n")  # removed
