"""The IPVS schedulers lc, wlc, sed, nq, sh and dh (rules of net/netfilter/ipvs/ip_vs_*.c)."""

from __future__ import annotations

from collections import Counter

from seaway.core.balancers.destination_hashing import (
    DestinationHashingBalancer,
)
from seaway.core.balancers.ipvs_hash_table import TABLE_SIZE, fallback_buckets
from seaway.core.balancers.least_connection import LeastConnectionBalancer
from seaway.core.balancers.never_queue import NeverQueueBalancer
from seaway.core.balancers.shortest_expected_delay import ShortestExpectedDelayBalancer
from seaway.core.balancers.source_hashing import SourceHashingBalancer
from seaway.core.balancers.weighted_least_connection import WeightedLeastConnectionBalancer
from seaway.core.config import Backend
from seaway.core.hashing import destination_hash, source_hash


def backends(*weights: int) -> list[Backend]:
    return [Backend(f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]


def open_connections(balancer: object, backend: Backend, count: int) -> None:
    for _ in range(count):
        balancer.started(backend)  # type: ignore[attr-defined]


def test_lc_takes_the_fewest_connections_first_on_ties_and_ignores_weights() -> None:
    a, b, c = backends(1, 5, 1)
    lc = LeastConnectionBalancer([a, b, c])
    assert lc.pick(0) == a  # all idle: the first one
    open_connections(lc, a, 2)
    open_connections(lc, b, 1)
    assert lc.pick(0) == c
    open_connections(lc, c, 1)
    assert lc.pick(0) == b  # b and c tie at 1; b comes first; b's weight 5 does not matter
    lc.ended(a)
    lc.ended(a)
    assert lc.pick(0) == a
    assert lc.pick(0, avoid={a}) == b
    assert lc.pick(0, avoid={a, b, c}) is None


def test_lc_skips_quiesced_backends_and_keeps_counts_across_updates() -> None:
    a, b = backends(1, 1)
    lc = LeastConnectionBalancer([a, b])
    open_connections(lc, a, 3)
    lc.update([a, Backend("10.0.0.2", 80, weight=0)])  # b quiesced (weight 0)
    assert lc.pick(0) == a
    lc.update([a, b])
    assert lc.pick(0) == b
    # An unmatched ended() cannot push a count below zero.
    lc.ended(b)
    assert lc.counts.active(b) == 0


def test_wlc_converges_to_the_weights_when_connections_stay_open() -> None:
    set_ = backends(1, 3, 2)
    wlc = WeightedLeastConnectionBalancer(set_)
    picks = []
    for _ in range(60):
        chosen = wlc.pick(0)
        assert chosen is not None
        wlc.started(chosen)
        picks.append(chosen)
    assert Counter(picks) == {set_[0]: 10, set_[1]: 30, set_[2]: 20}


def test_wlc_compares_overhead_per_weight_with_ties_to_the_earlier() -> None:
    a, b = backends(1, 3)
    wlc = WeightedLeastConnectionBalancer([a, b])
    open_connections(wlc, a, 1)
    open_connections(wlc, b, 3)
    # 256/1 vs 768/3: equal, so the earlier (a) stays.
    assert wlc.pick(0) == a
    open_connections(wlc, a, 1)
    assert wlc.pick(0) == b


def test_sed_and_nq_differ_on_idle_servers() -> None:
    slow, fast = backends(1, 10)
    sed = ShortestExpectedDelayBalancer([slow, fast])
    nq = NeverQueueBalancer([slow, fast])
    # sed: (0 + 1) / 1 against (0 + 1) / 10 -> fast. nq: slow is idle -> slow at once.
    assert sed.pick(0) == fast
    assert nq.pick(0) == slow
    open_connections(sed, fast, 10)
    assert sed.pick(0) == slow  # 11/10 > 1/1
    open_connections(nq, slow, 1)
    assert nq.pick(0) == fast  # fast is idle now
    open_connections(nq, fast, 5)
    assert nq.pick(0) == fast  # both busy: 2/1 against 6/10


def test_sed_tie_goes_to_the_earlier_server() -> None:
    a, b = backends(1, 10)
    sed = ShortestExpectedDelayBalancer([a, b])
    open_connections(sed, b, 9)  # (9 + 1) / 10 == (0 + 1) / 1
    assert sed.pick(0) == a
    open_connections(sed, b, 1)
    assert sed.pick(0) == a


def test_sh_table_gives_each_backend_weight_consecutive_buckets() -> None:
    a, b, c = backends(2, 1, 3)
    sh = SourceHashingBalancer([c, a, b])  # sorted by key whatever the input order
    table = sh.table
    assert len(table) == TABLE_SIZE
    assert list(table[:12]) == [a, a, b, c, c, c, a, a, b, c, c, c]
    assert Counter(table) == {a: 86, b: 43, c: 127}


def test_sh_with_more_backends_than_buckets_leaves_the_last_out() -> None:
    many = [Backend(f"10.1.{i // 256}.{i % 256}", 80) for i in range(300)]
    sh = SourceHashingBalancer(many)
    held = set(sh.table)
    assert len(held) == TABLE_SIZE
    assert held == set(sorted(many, key=lambda b: b.key)[:TABLE_SIZE])


def test_sh_sends_a_client_to_its_bucket_and_falls_back_like_sh_fallback() -> None:
    a, b, quiesced = backends(1, 1, 0)
    sh = SourceHashingBalancer([a, b, quiesced])
    client = source_hash("192.0.2.7")
    bucket = client & 0xFF
    assert sh.pick(client) == sh.table[bucket]
    assert all(sh.pick(client) == sh.pick(client) for _ in range(5))
    # A bucket of the weight-0 backend (it still takes one bucket per turn).
    quiet_bucket = next(i for i, owner in enumerate(sh.table) if owner == quiesced)
    expected = next(sh.table[i] for i in fallback_buckets(quiet_bucket) if sh.table[i] != quiesced)
    assert sh.pick(quiet_bucket) == expected
    assert fallback_buckets(quiet_bucket)[0] == (2 * quiet_bucket) % 256
    owner = sh.table[bucket]
    assert sh.pick(client, avoid={owner}) not in (owner, quiesced)
    assert sh.pick(client, avoid={a, b}) is None
    assert SourceHashingBalancer([]).pick(client) is None


def test_dh_sends_every_flow_to_one_vip_to_one_backend() -> None:
    set_ = backends(1, 5, 1)
    dh = DestinationHashingBalancer(set_)
    # Unweighted: buckets dealt one per turn.
    assert list(dh.table[:6]) == set_ + set_
    vip = destination_hash("127.240.0.10")
    assert {dh.pick(vip) for _ in range(50)} == {dh.table[vip & 0xFF]}
    # Different VIPs spread over the backends.
    owners = {dh.pick(destination_hash(f"127.240.0.{i}")) for i in range(1, 40)}
    assert owners == set(set_)
    chosen = dh.pick(vip)
    assert chosen is not None
    assert dh.pick(vip, avoid={chosen}) not in (None, chosen)
    assert dh.needs == frozenset({"destination_hash"})
    assert SourceHashingBalancer.needs == frozenset({"source_hash"})
