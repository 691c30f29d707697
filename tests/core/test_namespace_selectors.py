"""Label selectors (matchLabels AND matchExpressions) and the Gateway listener's
``allowedRoutes.namespaces.selector`` that uses them, each case written from the
Kubernetes label selector rules."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from seaway.core.plan import plan
from seaway.model.label_selectors import LabelRequirement, LabelSelector
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

LABELS = {"env": "prod", "team": "web", "empty": ""}

# (name, selector, whether it matches LABELS)
SELECTOR_CASES: list[tuple[str, LabelSelector, bool]] = [
    ("empty selector matches everything", LabelSelector(), True),
    ("matchLabels equal", LabelSelector({"env": "prod"}), True),
    ("matchLabels differ", LabelSelector({"env": "dev"}), False),
    ("matchLabels absent key", LabelSelector({"zone": "a"}), False),
    (
        "In, value listed",
        LabelSelector(
            match_expressions=(LabelRequirement("env", "In", frozenset({"dev", "prod"})),)
        ),
        True,
    ),
    (
        "In, value not listed",
        LabelSelector(match_expressions=(LabelRequirement("env", "In", frozenset({"dev"})),)),
        False,
    ),
    (
        "In, key absent",
        LabelSelector(match_expressions=(LabelRequirement("zone", "In", frozenset({"a"})),)),
        False,
    ),
    (
        "In, empty value listed",
        LabelSelector(match_expressions=(LabelRequirement("empty", "In", frozenset({""})),)),
        True,
    ),
    (
        "NotIn, value listed",
        LabelSelector(match_expressions=(LabelRequirement("env", "NotIn", frozenset({"prod"})),)),
        False,
    ),
    (
        "NotIn, value not listed",
        LabelSelector(match_expressions=(LabelRequirement("env", "NotIn", frozenset({"dev"})),)),
        True,
    ),
    (
        "NotIn, key absent matches",
        LabelSelector(match_expressions=(LabelRequirement("zone", "NotIn", frozenset({"a"})),)),
        True,
    ),
    (
        "Exists, present",
        LabelSelector(match_expressions=(LabelRequirement("team", "Exists"),)),
        True,
    ),
    (
        "Exists, present with empty value",
        LabelSelector(match_expressions=(LabelRequirement("empty", "Exists"),)),
        True,
    ),
    (
        "Exists, absent",
        LabelSelector(match_expressions=(LabelRequirement("zone", "Exists"),)),
        False,
    ),
    (
        "DoesNotExist, absent",
        LabelSelector(match_expressions=(LabelRequirement("zone", "DoesNotExist"),)),
        True,
    ),
    (
        "DoesNotExist, present",
        LabelSelector(match_expressions=(LabelRequirement("team", "DoesNotExist"),)),
        False,
    ),
    (
        "matchLabels AND expressions, both hold",
        LabelSelector(
            {"team": "web"},
            (
                LabelRequirement("env", "In", frozenset({"prod"})),
                LabelRequirement("zone", "DoesNotExist"),
            ),
        ),
        True,
    ),
    (
        "matchLabels AND expressions, labels fail",
        LabelSelector({"team": "db"}, (LabelRequirement("env", "In", frozenset({"prod"})),)),
        False,
    ),
    (
        "matchLabels AND expressions, one expression fails",
        LabelSelector(
            {"team": "web"},
            (
                LabelRequirement("env", "In", frozenset({"prod"})),
                LabelRequirement("team", "NotIn", frozenset({"web"})),
            ),
        ),
        False,
    ),
]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [pytest.param(s, e, id=name) for name, s, e in SELECTOR_CASES],
)
def test_label_selector(selector: LabelSelector, expected: bool) -> None:
    assert selector.matches(LABELS) is expected


def _namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": namespace},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}], "rules": [{}]},
    }


def test_listener_selector_admits_routes_by_namespace_labels() -> None:
    selector = {
        "matchLabels": {"gateway-access": "yes"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "quarantined", "operator": "DoesNotExist"},
        ],
    }
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "seaway"},
            "spec": {"controllerName": "seaway.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {
                "gatewayClassName": "seaway",
                "addresses": [{"type": "IPAddress", "value": "127.242.0.2"}],
                "listeners": [
                    {
                        "name": "http",
                        "port": 18080,
                        "protocol": "HTTP",
                        "allowedRoutes": {"namespaces": {"from": "Selector", "selector": selector}},
                    }
                ],
            },
        },
        _namespace("prod", {"gateway-access": "yes", "env": "prod"}),
        _namespace("staging", {"gateway-access": "yes", "env": "staging"}),
        _namespace("dev", {"gateway-access": "yes", "env": "dev"}),
        _namespace("locked", {"gateway-access": "yes", "env": "prod", "quarantined": "true"}),
        _namespace("private", {"env": "prod"}),
        # "unlisted" has no Namespace object: only kubernetes.io/metadata.name is known.
        *[_route(ns) for ns in ("prod", "staging", "dev", "locked", "private", "unlisted")],
    ]
    result = parse_text(yaml.safe_dump_all(docs), "ns.yaml")
    assert not result.errors, result.errors
    config = plan(build_state([result]), {})
    accepted = {
        view.key.split("/")[0]: view.parents[0].conditions[0].reason
        for view in config.routes.http_routes
    }
    assert accepted == {
        "prod": "Accepted",
        "staging": "Accepted",
        "dev": "NotAllowedByListeners",
        "locked": "NotAllowedByListeners",
        "private": "NotAllowedByListeners",
        "unlisted": "NotAllowedByListeners",
    }
    (gateway,) = config.routes.gateways
    assert gateway.listeners[0].attached_routes == 2
