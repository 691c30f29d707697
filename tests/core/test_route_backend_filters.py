"""Per-backendRef header filters in the core (pure): composing two header edits into one,
and HTTPRoutes compiled so that each backend carries the rule's edit, then its own."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from seaway.core.config import DesiredConfig
from seaway.core.plan import plan
from seaway.core.routes import HeaderEdit, RouteBackend, compose_edits
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

GROUP = "gateway.networking.k8s.io"

# -- HeaderEdit.then -----------------------------------------------------------------

CLIENT = [
    ("Host", "h"),
    ("X-A", "client"),
    ("x-b", "client-1"),
    ("X-B", "client-2"),
    ("X-C", "client"),
    ("Accept", "*/*"),
]

# (name, first edit, second edit): each a case where the order of the two matters.
EDITS = [
    (
        "second-sets-what-first-added",
        HeaderEdit(add=(("X-A", "first"),)),
        HeaderEdit(set=(("x-a", "second"),)),
    ),
    (
        "second-removes-what-first-set",
        HeaderEdit(set=(("X-New", "first"), ("X-C", "first"))),
        HeaderEdit(remove=("x-new",)),
    ),
    (
        "second-adds-to-what-first-set",
        HeaderEdit(set=(("X-B", "first"),)),
        HeaderEdit(add=(("X-B", "second"),)),
    ),
    (
        "first-removes-second-adds-back",
        HeaderEdit(remove=("x-c", "x-b")),
        HeaderEdit(add=(("X-C", "second"),)),
    ),
    (
        "both-add-the-same-name",
        HeaderEdit(add=(("X-T", "1"), ("X-T", "2"))),
        HeaderEdit(add=(("X-T", "3"),)),
    ),
    (
        "everything-at-once",
        HeaderEdit(set=(("X-A", "s1"), ("X-D", "s1")), add=(("X-E", "a1"),), remove=("x-b",)),
        HeaderEdit(set=(("X-E", "s2"),), add=(("X-A", "a2"), ("X-B", "a2")), remove=("x-d",)),
    ),
    ("second-is-empty", HeaderEdit(set=(("X-A", "s1"),)), HeaderEdit()),
    ("first-is-empty", HeaderEdit(), HeaderEdit(remove=("x-a",))),
]


def _by_name(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The values of each name in order: what HTTP gives meaning to (RFC 9110 5.3)."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(name.lower(), []).append(value)
    return result


@pytest.mark.parametrize(("first", "second"), [c[1:] for c in EDITS], ids=[c[0] for c in EDITS])
def test_then_is_the_two_edits_in_turn(first: HeaderEdit, second: HeaderEdit) -> None:
    in_turn = second.apply(first.apply(CLIENT))
    composed = first.then(second).apply(CLIENT)
    assert _by_name(composed) == _by_name(in_turn)
    assert sorted(composed) == sorted(in_turn)  # the same fields, spelled the same


def test_then_orders_the_edits() -> None:
    route = HeaderEdit(set=(("X-Stage", "route"),))
    backend = HeaderEdit(set=(("X-Stage", "backend"),))
    assert _by_name(route.then(backend).apply(CLIENT))["x-stage"] == ["backend"]
    assert _by_name(backend.then(route).apply(CLIENT))["x-stage"] == ["route"]


def test_compose_edits_keeps_none_when_nothing_edits() -> None:
    edit = HeaderEdit(add=(("X-A", "1"),))
    assert compose_edits(None, None) is None
    assert compose_edits(edit, None) is edit
    assert compose_edits(None, edit) is edit


# -- compiled routes -----------------------------------------------------------------


def _service(name: str, port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        },
    ]


def _config(rule: dict[str, Any]) -> DesiredConfig:
    docs = [
        *_service("blue", 21001),
        *_service("green", 21002),
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "seaway"},
            "spec": {"controllerName": "seaway.io/gateway-controller"},
        },
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default"},
            "spec": {
                "gatewayClassName": "seaway",
                "addresses": [{"type": "IPAddress", "value": "127.243.0.1"}],
                "listeners": [{"name": "http", "port": 18080, "protocol": "HTTP"}],
            },
        },
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [rule]},
        },
    ]
    result = parse_text(yaml.safe_dump_all(docs), "backend-filters.yaml")
    assert not result.errors, result.errors
    return plan(build_state([result]), {})


def _backends(config: DesiredConfig) -> dict[str, RouteBackend]:
    (listener,) = config.http_listeners.values()
    result = listener.routes.match("h", "/", "GET", [], "")
    assert result is not None
    return {b.backend_set.split("/")[1].split(":")[0]: b for b in result.action.backends}


def _conditions(config: DesiredConfig) -> dict[str, tuple[bool, str]]:
    (route,) = config.routes.http_routes
    (parent,) = route.parents
    return {c.type: (c.status, c.reason) for c in parent.conditions}


def _request_filter(**edit: Any) -> dict[str, Any]:
    return {"type": "RequestHeaderModifier", "requestHeaderModifier": edit}


def _response_filter(**edit: Any) -> dict[str, Any]:
    return {"type": "ResponseHeaderModifier", "responseHeaderModifier": edit}


def test_each_backend_ref_carries_its_own_edits() -> None:
    config = _config(
        {
            "backendRefs": [
                {
                    "name": "blue",
                    "port": 80,
                    "filters": [
                        _request_filter(add=[{"name": "X-Via", "value": "blue"}]),
                        _response_filter(set=[{"name": "X-Pool", "value": "blue"}]),
                    ],
                },
                {
                    "name": "green",
                    "port": 80,
                    "filters": [_request_filter(set=[{"name": "X-Via", "value": "green"}])],
                },
            ]
        }
    )
    assert _conditions(config) == {
        "Accepted": (True, "Accepted"),
        "ResolvedRefs": (True, "ResolvedRefs"),
    }
    backends = _backends(config)
    assert backends["blue"].request_headers == HeaderEdit(add=(("X-Via", "blue"),))
    assert backends["blue"].response_headers == HeaderEdit(set=(("X-Pool", "blue"),))
    assert backends["green"].request_headers == HeaderEdit(set=(("X-Via", "green"),))
    assert backends["green"].response_headers is None


def test_the_rule_edit_comes_first_then_the_backend_ref_edit() -> None:
    config = _config(
        {
            "filters": [
                _request_filter(
                    set=[{"name": "X-Stage", "value": "rule"}],
                    add=[{"name": "X-Rule", "value": "yes"}],
                ),
                _response_filter(remove=["Server"]),
            ],
            "backendRefs": [
                {
                    "name": "blue",
                    "port": 80,
                    "filters": [
                        _request_filter(
                            set=[{"name": "X-Stage", "value": "blue"}], remove=["X-Rule"]
                        ),
                        _response_filter(add=[{"name": "Server", "value": "blue"}]),
                    ],
                },
                {"name": "green", "port": 80},
            ],
        }
    )
    backends = _backends(config)
    blue, green = backends["blue"], backends["green"]
    client = [("X-Stage", "client"), ("X-Other", "1")]
    assert blue.request_headers is not None and green.request_headers is not None
    assert _by_name(blue.request_headers.apply(client)) == {
        "x-stage": ["blue"],
        "x-other": ["1"],
    }
    assert _by_name(green.request_headers.apply(client)) == {
        "x-stage": ["rule"],
        "x-other": ["1"],
        "x-rule": ["yes"],
    }
    upstream = [("Server", "pod"), ("Content-Type", "text/plain")]
    assert blue.response_headers is not None and green.response_headers is not None
    assert _by_name(blue.response_headers.apply(upstream)) == {
        "content-type": ["text/plain"],
        "server": ["blue"],
    }
    assert _by_name(green.response_headers.apply(upstream)) == {"content-type": ["text/plain"]}


def test_without_filters_no_backend_edits_anything() -> None:
    """The cheap path: nothing to apply per request when no filter edits headers."""
    config = _config({"backendRefs": [{"name": "blue", "port": 80}, {"name": "green", "port": 80}]})
    for backend in _backends(config).values():
        assert (backend.request_headers, backend.response_headers) == (None, None)
