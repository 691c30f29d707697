"""LiveBackendSet with state shared between workers: connection counts summed over the
workers, one ClientIP affinity table. Two "workers" here are two rows of one real
shared-state file, attached in this process (tests/test_shared_state.py uses separate
processes)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest

from seaway.core.balancers.connection_counts import ConnectionCountingBalancer
from seaway.core.balancers.least_request import LeastRequestBalancer
from seaway.core.config import Backend, BackendSet
from seaway.core.flows import FlowTable
from seaway.core.live_set import LiveBackendSet
from seaway.core.sharing import SharedAffinityTable
from seaway.shared_state import PlaneState, SharedRegion

B0, B1, B2 = (Backend(f"10.0.0.{i}", 8000) for i in range(3))


def spec(
    algorithm: str = "lc", affinity: float | None = None, key: str = "default/web:80/TCP"
) -> BackendSet:
    return BackendSet(
        key=key,
        service="default/web",
        port_name="main",
        protocol="TCP",
        backends=(B0, B1, B2),
        algorithm=algorithm,
        affinity_timeout=affinity,
    )


@pytest.fixture
def planes() -> Iterator[tuple[PlaneState, PlaneState]]:
    """The L4 plane's shared state in two workers."""
    with SharedRegion.create(2, count_slots=64, affinity_entries=64) as region:
        yield region.attach(0).plane("l4"), region.attach(1).plane("l4")


def connect(live: LiveBackendSet, client: str = "198.51.100.7", now: float = 0.0) -> Backend:
    """What a proxy does for a new connection: choose, count, remember."""
    backend = live.choose(client, 40000, "127.240.0.1", 80, now=now)
    assert backend is not None
    live.balancer.started(backend)
    live.remember(client, backend, now)
    return backend


@pytest.mark.parametrize("algorithm", ["lc", "wlc", "sed", "nq"])
def test_least_connection_family_balances_on_the_count_of_every_worker(
    planes: tuple[PlaneState, PlaneState], algorithm: str
) -> None:
    a = LiveBackendSet(spec(algorithm), rng=random.Random(1), shared=planes[0])
    b = LiveBackendSet(spec(algorithm), rng=random.Random(1), shared=planes[1])
    # Alternating workers; counted per worker, each would start again at B0.
    assert [connect(w) for w in (a, b, a, b, a, b)] == [B0, B1, B2, B0, B1, B2]
    a.balancer.ended(B1)
    assert connect(b) == B1  # worker a's connection to B1 ended: b sees it
    assert isinstance(b.balancer, ConnectionCountingBalancer)
    assert b.balancer.counts.active(B1) == 2
    assert b.balancer.counts.by_key == {"10.0.0.0:8000": 1, "10.0.0.2:8000": 1, "10.0.0.1:8000": 2}


def test_least_request_reads_the_count_of_every_worker(
    planes: tuple[PlaneState, PlaneState],
) -> None:
    a = LiveBackendSet(spec("least-request"), rng=random.Random(1), shared=planes[0])
    b = LiveBackendSet(spec("least-request"), rng=random.Random(1), shared=planes[1])
    for _ in range(3):
        a.balancer.started(B0)
    b.balancer.started(B1)
    assert isinstance(b.balancer, LeastRequestBalancer)
    assert [b.balancer.counts.active(x) for x in (B0, B1, B2)] == [3, 1, 0]
    assert [b.balancer.weight(x) for x in (B0, B1, B2)] == [0.25, 0.5, 1.0]


def test_client_ip_affinity_is_one_table_for_every_worker(
    planes: tuple[PlaneState, PlaneState],
) -> None:
    a = LiveBackendSet(spec("random", affinity=10.0), rng=random.Random(1), shared=planes[0])
    b = LiveBackendSet(spec("random", affinity=10.0), rng=random.Random(2), shared=planes[1])
    assert isinstance(a.affinity, SharedAffinityTable)
    first = connect(a, now=100.0)
    # Worker b's random balancer would spread them; the remembered backend wins.
    assert {connect(b, now=100.0 + i) for i in range(20)} == {first}
    # Forgotten once idle for the timeout since the last connection (at 119).
    assert b.affinity is not None and b.affinity.get("198.51.100.7", 128.9) == first.key
    assert b.affinity.get("198.51.100.7", 129.0) is None


def test_affinity_entries_of_other_sets_and_planes_do_not_mix() -> None:
    with SharedRegion.create(1, affinity_entries=64) as region:
        worker = region.attach(0)
        l4 = LiveBackendSet(
            spec("lc", affinity=60.0), rng=random.Random(1), shared=worker.plane("l4")
        )
        http = LiveBackendSet(
            spec("lc", affinity=60.0), rng=random.Random(1), shared=worker.plane("http")
        )
        api = LiveBackendSet(
            spec("lc", affinity=60.0, key="default/api:80/TCP"),
            rng=random.Random(1),
            shared=worker.plane("l4"),
        )
        l4.remember("198.51.100.7", B2, 0.0)
        assert l4.choose("198.51.100.7", 1, "x", 80, now=1.0) == B2
        assert http.choose("198.51.100.7", 1, "x", 80, now=1.0) == B0
        assert api.choose("198.51.100.7", 1, "x", 80, now=1.0) == B0
        l4.balancer.started(B0)
        assert http.balancer.pick(0) == B0  # counts are per plane too


def test_a_remembered_backend_that_left_the_set_is_a_miss(
    planes: tuple[PlaneState, PlaneState],
) -> None:
    a = LiveBackendSet(spec("lc", affinity=60.0), rng=random.Random(1), shared=planes[0])
    b = LiveBackendSet(spec("lc", affinity=60.0), rng=random.Random(1), shared=planes[1])
    a.remember("198.51.100.7", B0, 0.0)
    b.update(replace(b.spec, backends=(B1, B2)))
    assert b.choose("198.51.100.7", 1, "x", 80, now=1.0) == B1
    b.update(replace(b.spec, backends=(B0, B1, B2)))
    assert b.choose("198.51.100.7", 1, "x", 80, now=1.0) == B0


def test_rebuilt_balancer_keeps_the_workers_counts_or_releases_them(
    planes: tuple[PlaneState, PlaneState],
) -> None:
    a = LiveBackendSet(spec("lc"), rng=random.Random(1), shared=planes[0])
    b = LiveBackendSet(spec("lc"), rng=random.Random(1), shared=planes[1])
    connect(a)  # B0
    connect(a)  # B1
    a.update(replace(a.spec, algorithm="wlc"))
    assert connect(a) == B2  # the new balancer sees the connections opened before it
    a.balancer.ended(B0)  # ended through the new balancer: counted down
    assert connect(b) == B0
    # To an algorithm that does not count: nobody would count a's connections down.
    a.update(replace(a.spec, algorithm="maglev"))
    assert isinstance(b.balancer, ConnectionCountingBalancer)
    assert [b.balancer.counts.active(x) for x in (B0, B1, B2)] == [1, 0, 0]


def test_alone_a_set_keeps_its_own_tables_and_the_plain_count_lookup() -> None:
    live = LiveBackendSet(spec("lc", affinity=60.0), rng=random.Random(1))
    assert isinstance(live.affinity, FlowTable)
    assert isinstance(live.balancer, ConnectionCountingBalancer)
    counts = live.balancer.counts
    assert counts.count_of == counts.by_key.get  # the scan reads the dict directly
    assert [connect(live) for _ in range(2)] == [B0, B0]  # affinity: same client
    assert counts.by_key == {B0.key: 2}
