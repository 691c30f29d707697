"""FlowTable: bound, idle timeout, LRU order, eviction callbacks (exact fake times)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from seaway.core.flows import FlowTable


def test_get_refreshes_and_idle_flow_expires_exactly_at_timeout() -> None:
    evicted: list[tuple[str, int]] = []
    table: FlowTable[str, int] = FlowTable(
        10, idle_timeout=30.0, on_evict=lambda k, v: evicted.append((k, v))
    )
    table.put("a", 1, now=0.0)
    assert table.get("a", now=29.9) == 1  # refreshed at 29.9
    assert table.get("a", now=59.8) == 1  # 29.9 s idle: still there
    assert table.get("a", now=89.8) is None  # exactly 30 s idle: gone
    assert evicted == [("a", 1)]
    assert len(table) == 0


def test_full_table_evicts_least_recently_used() -> None:
    evicted: list[str] = []
    table: FlowTable[str, int] = FlowTable(
        2, idle_timeout=100.0, on_evict=lambda k, v: evicted.append(k)
    )
    table.put("a", 1, now=0.0)
    table.put("b", 2, now=1.0)
    table.get("a", now=2.0)  # "b" is now least recently used
    table.put("c", 3, now=3.0)
    assert evicted == ["b"]
    assert "a" in table and "c" in table and "b" not in table


def test_expire_removes_only_idle_flows_and_pop_does_not_call_back() -> None:
    evicted: list[str] = []
    table: FlowTable[str, int] = FlowTable(
        10, idle_timeout=10.0, on_evict=lambda k, v: evicted.append(k)
    )
    table.put("old", 1, now=0.0)
    table.put("new", 2, now=5.0)
    table.put("gone", 3, now=5.0)
    assert table.pop("gone") == 3
    assert table.expire(now=12.0) == 1
    assert evicted == ["old"]
    assert [k for k, _ in table.items()] == ["new"]


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 5)), max_size=300), st.integers(1, 20))
def test_never_exceeds_its_bound(ops: list[tuple[int, float]], bound: int) -> None:
    table: FlowTable[int, int] = FlowTable(bound, idle_timeout=3.0)
    now = 0.0
    for key, step in ops:
        now += step
        if table.get(key, now) is None:
            table.put(key, key, now)
        assert len(table) <= bound
