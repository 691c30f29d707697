"""Smooth weighted round-robin over a route's backendRefs (nginx's sequence)."""

from __future__ import annotations

from collections import Counter

from seaway.core.route_weights import SmoothWeights
from seaway.core.routes import RouteBackend


def test_weights_5_1_1_give_nginx_smooth_sequence() -> None:
    a, b, c = RouteBackend("a", 5), RouteBackend("b", 1), RouteBackend("c", 1)
    weights = SmoothWeights((a, b, c))
    assert [weights.pick() for _ in range(7)] == [a, a, b, a, c, a, a]


def test_zero_weight_refs_get_nothing_and_empty_picks_none() -> None:
    a, b = RouteBackend("a", 3), RouteBackend("b", 0)
    weights = SmoothWeights((a, b))
    assert Counter(weights.pick() for _ in range(30)) == {a: 30}
    assert SmoothWeights(()).pick() is None
