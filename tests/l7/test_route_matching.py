"""Route compilation and matching (pure): the Ingress documentation's path examples and
the Gateway API's HTTPRoute precedence rules, each case written from the specification."""

from __future__ import annotations

from typing import Any

import pytest
from tests.l7.conftest import config_from, gateway_docs, service_docs

from seaway.core.config import DesiredConfig
from seaway.core.routes import (
    CompiledMatch,
    PathEdit,
    Redirect,
    redirect_location,
    replace_path,
)

INGRESS_CLASS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "IngressClass",
    "metadata": {"name": "seaway"},
    "spec": {"controller": "seaway.io/ingress-controller"},
}


def _ingress(name: str, paths: list[tuple[str, str, str]], host: str | None = None,
             created: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {"path": p, "pathType": t,
                 "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                for p, t, svc in paths
            ]
        }
    }
    if host:
        rule["host"] = host
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if created:
        meta["creationTimestamp"] = created
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {"ingressClassName": "seaway", "rules": [rule]},
    }


def _services(*names: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        docs += service_docs(name, [20000 + i])
    return docs


def _route_to(config: DesiredConfig, host: str, path: str, method: str = "GET", *,
              headers: list[tuple[str, str]] | None = None, query: str = "") -> str | None:
    """The Service a request is routed to (None: 404)."""
    (listener,) = config.http_listeners.values()
    result = listener.routes.match(host, path, method, headers or [], query)
    if result is None:
        return None
    backend = result.action.backends[0]
    return backend.backend_set.split(":")[0].split("/")[1] if backend.backend_set else "?"


# The table "Examples" of https://kubernetes.io/docs/concepts/services-networking/ingress/
# (path types): (paths as (path, type, service)), request path, expected service or None.
INGRESS_EXAMPLES = [
    ("prefix / matches all", [("/", "Prefix", "a")], "/anything", "a"),
    ("exact /foo matches /foo", [("/foo", "Exact", "a")], "/foo", "a"),
    ("exact /foo not /bar", [("/foo", "Exact", "a")], "/bar", None),
    ("exact /foo not /foo/", [("/foo", "Exact", "a")], "/foo/", None),
    ("exact /foo/ not /foo", [("/foo/", "Exact", "a")], "/foo", None),
    ("prefix /foo matches /foo", [("/foo", "Prefix", "a")], "/foo", "a"),
    ("prefix /foo matches /foo/", [("/foo", "Prefix", "a")], "/foo/", "a"),
    ("prefix /foo/ matches /foo", [("/foo/", "Prefix", "a")], "/foo", "a"),
    ("prefix /foo/ matches /foo/", [("/foo/", "Prefix", "a")], "/foo/", "a"),
    ("prefix /aaa/bb not /aaa/bbb", [("/aaa/bb", "Prefix", "a")], "/aaa/bbb", None),
    ("prefix /aaa/bbb matches /aaa/bbb", [("/aaa/bbb", "Prefix", "a")], "/aaa/bbb", "a"),
    ("prefix /aaa/bbb/ ignores trailing slash", [("/aaa/bbb/", "Prefix", "a")], "/aaa/bbb", "a"),
    ("prefix /aaa/bbb matches trailing slash", [("/aaa/bbb", "Prefix", "a")], "/aaa/bbb/", "a"),
    ("prefix /aaa/bbb matches subpath", [("/aaa/bbb", "Prefix", "a")], "/aaa/bbb/ccc", "a"),
    ("prefix /aaa/bbb not string prefix", [("/aaa/bbb", "Prefix", "a")], "/aaa/bbbxyz", None),
    ("prefix /, /aaa: /aaa/ccc uses /aaa",
     [("/", "Prefix", "a"), ("/aaa", "Prefix", "b")], "/aaa/ccc", "b"),
    ("prefix /, /aaa, /aaa/bbb: /aaa/bbb uses /aaa/bbb",
     [("/", "Prefix", "a"), ("/aaa", "Prefix", "b"), ("/aaa/bbb", "Prefix", "c")],
     "/aaa/bbb", "c"),
    ("prefix /, /aaa, /aaa/bbb: /ccc uses /",
     [("/", "Prefix", "a"), ("/aaa", "Prefix", "b"), ("/aaa/bbb", "Prefix", "c")], "/ccc", "a"),
    ("prefix /aaa: /ccc uses the default backend", [("/aaa", "Prefix", "a")], "/ccc", None),
    ("mixed /foo Prefix and Exact: /foo prefers Exact",
     [("/foo", "Prefix", "a"), ("/foo", "Exact", "b")], "/foo", "b"),
    ("ImplementationSpecific is treated as Prefix",
     [("/foo", "ImplementationSpecific", "a")], "/foo/bar", "a"),
]


@pytest.mark.parametrize(
    ("paths", "request_path", "expected"),
    [pytest.param(p, r, e, id=name) for name, p, r, e in INGRESS_EXAMPLES],
)
def test_ingress_documentation_examples(
    paths: list[tuple[str, str, str]], request_path: str, expected: str | None
) -> None:
    config = config_from([INGRESS_CLASS, *_services("a", "b", "c"), _ingress("web", paths)])
    assert _route_to(config, "example.com", request_path) == expected


def test_ingress_hosts_exact_and_single_label_wildcard() -> None:
    config = config_from([
        INGRESS_CLASS, *_services("a", "b", "c"),
        _ingress("exact", [("/", "Prefix", "a")], host="foo.bar.com"),
        _ingress("wild", [("/", "Prefix", "b")], host="*.bar.com"),
        _ingress("any", [("/", "Prefix", "c")]),
    ])
    assert _route_to(config, "foo.bar.com", "/") == "a"
    assert _route_to(config, "baz.bar.com", "/") == "b"
    # A wildcard covers exactly one DNS label (Ingress documentation, "Hostname wildcards").
    assert _route_to(config, "baz.foo.bar.com", "/") == "c"
    assert _route_to(config, "bar.com", "/") == "c"


def test_ingress_default_backend_and_class_selection() -> None:
    default = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "fallback", "namespace": "default"},
        "spec": {"ingressClassName": "seaway",
                 "defaultBackend": {"service": {"name": "b", "port": {"name": "http"}}}},
    }
    other_class = _ingress("other", [("/other", "Prefix", "c")])
    other_class["spec"]["ingressClassName"] = "nginx"
    config = config_from([INGRESS_CLASS, *_services("a", "b", "c"),
                          _ingress("web", [("/aaa", "Prefix", "a")]), default, other_class])
    assert _route_to(config, "x", "/aaa") == "a"
    assert _route_to(config, "x", "/ccc") == "b"  # defaultBackend, by port name
    assert _route_to(config, "x", "/other") == "b"  # not seaway's class: not served
    views = {v.key: v for v in config.routes.ingresses}
    assert views["default/other"].served is False
    assert "nginx not found" in views["default/other"].message
    assert views["default/web"].served and views["default/web"].ports == (8080,)
    assert views["default/web"].addresses == views["default/fallback"].addresses != ()


def test_ingress_without_class_needs_the_default_annotation() -> None:
    ingress = _ingress("web", [("/", "Prefix", "a")])
    del ingress["spec"]["ingressClassName"]
    config = config_from([INGRESS_CLASS, *_services("a"), ingress])
    assert config.http_listeners == {}
    default_class = {**INGRESS_CLASS, "metadata": {
        "name": "seaway", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}}
    config = config_from([default_class, *_services("a"), ingress])
    assert _route_to(config, "x", "/") == "a"


def _route(rule: dict[str, Any], *, name_order: int = 0, hostnames: list[str] | None = None,
           ) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [rule]}
    if hostnames:
        spec["hostnames"] = hostnames
    return spec


def _rule(service: str, *matches: dict[str, Any]) -> dict[str, Any]:
    return {"matches": list(matches), "backendRefs": [{"name": service, "port": 80}]}


def _gateway_config(*routes: dict[str, Any], created: list[str] | None = None) -> DesiredConfig:
    docs = [*_services("a", "b", "c"), *gateway_docs(18080, "127.241.9.9", list(routes))]
    if created:
        for doc, ts in zip([d for d in docs if d["kind"] == "HTTPRoute"], created, strict=True):
            doc["metadata"]["creationTimestamp"] = ts
    return config_from(docs)


def test_httproute_exact_path_beats_longer_prefix() -> None:
    config = _gateway_config(
        _route(_rule("a", {"path": {"type": "PathPrefix", "value": "/foo/bar"}})),
        _route(_rule("b", {"path": {"type": "Exact", "value": "/foo"}})),
        _route(_rule("c", {"path": {"type": "PathPrefix", "value": "/foo"}})),
    )
    assert _route_to(config, "h", "/foo") == "b"
    assert _route_to(config, "h", "/foo/bar/x") == "a"
    assert _route_to(config, "h", "/foo/x") == "c"
    assert _route_to(config, "h", "/foobar") is None  # element-wise prefix


def test_httproute_method_then_headers_then_query_params() -> None:
    config = _gateway_config(
        _route(_rule("a", {"path": {"type": "PathPrefix", "value": "/"},
                           "headers": [{"name": "x-a", "value": "1"},
                                       {"name": "x-b", "value": "2"}]})),
        _route(_rule("b", {"path": {"type": "PathPrefix", "value": "/"}, "method": "POST"})),
        _route(_rule("c", {"path": {"type": "PathPrefix", "value": "/"},
                           "queryParams": [{"name": "v", "value": "2"}],
                           "headers": [{"name": "x-a", "value": "1"},
                                       {"name": "x-b", "value": "2"}]})),
    )
    both = [("X-A", "1"), ("x-b", "2")]
    # A method match outranks any number of header matches.
    assert _route_to(config, "h", "/", "POST", headers=both, query="v=2") == "b"
    # Equal headers: the one with more query param matches wins.
    assert _route_to(config, "h", "/", "GET", headers=both, query="v=2") == "c"
    assert _route_to(config, "h", "/", "GET", headers=both, query="v=3") == "a"
    assert _route_to(config, "h", "/", "GET", headers=[("x-a", "1")]) is None


def test_httproute_ties_go_to_the_oldest_then_namespace_name() -> None:
    rule_a = _rule("a", {"path": {"type": "PathPrefix", "value": "/x"}})
    rule_b = _rule("b", {"path": {"type": "PathPrefix", "value": "/x"}})
    older_second = _gateway_config(
        _route(rule_a), _route(rule_b),
        created=["2024-05-02T00:00:00Z", "2024-05-01T00:00:00Z"],
    )
    assert _route_to(older_second, "h", "/x") == "b"
    same_age = _gateway_config(
        _route(rule_a), _route(rule_b),
        created=["2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z"],
    )
    assert _route_to(same_age, "h", "/x") == "a"  # route-0 before route-1


def test_httproute_first_rule_wins_within_a_route_and_regex_and_hostnames() -> None:
    config = _gateway_config(
        {"hostnames": ["*.example.com"], "rules": [
            _rule("a", {"path": {"type": "PathPrefix", "value": "/"}}),
            _rule("b", {"path": {"type": "PathPrefix", "value": "/"}}),
        ]},
        {"hostnames": ["foo.example.com"], "rules": [
            _rule("c", {"path": {"type": "RegularExpression", "value": "/v[0-9]+/.*"}}),
        ]},
    )
    assert _route_to(config, "bar.example.com", "/") == "a"
    # Gateway API wildcards cover one or more labels.
    assert _route_to(config, "a.b.example.com", "/") == "a"
    # The exact hostname is more specific than the wildcard and decides alone.
    assert _route_to(config, "foo.example.com", "/v2/x") == "c"
    assert _route_to(config, "foo.example.com", "/other") is None
    assert _route_to(config, "example.com", "/") is None


def test_httproute_status_conditions() -> None:
    config = _gateway_config(
        _route({"backendRefs": [{"name": "missing", "port": 80}]}),
        {"parentRefs": [{"name": "gw", "sectionName": "nope"}],
         "rules": [{"backendRefs": [{"name": "a", "port": 80}]}]},
        _route({"backendRefs": [{"name": "a", "port": 80, "kind": "ConfigMap"}]}),
        {"parentRefs": [{"name": "absent"}], "rules": [{}]},
    )
    by_key = {v.key: v for v in config.routes.http_routes}

    def conditions(key: str) -> dict[str, tuple[bool, str]]:
        (parent,) = by_key[key].parents
        return {c.type: (c.status, c.reason) for c in parent.conditions}

    assert conditions("default/route-0") == {
        "Accepted": (True, "Accepted"), "ResolvedRefs": (False, "BackendNotFound")}
    assert conditions("default/route-1")["Accepted"] == (False, "NoMatchingParent")
    assert conditions("default/route-2")["ResolvedRefs"] == (False, "InvalidKind")
    assert conditions("default/route-3")["Accepted"] == (False, "NoMatchingParent")
    (listener,) = config.http_listeners.values()
    # An invalid backendRef answers 500 (Gateway API HTTPRouteRule.backendRefs).
    result = listener.routes.match("h", "/", "GET", [], "")
    assert result is not None and result.action.backends[0].status == 500
    (gateway,) = config.routes.gateways
    assert gateway.addresses == ("127.241.9.9",)
    assert gateway.listeners[0].attached_routes == 2


def test_listener_hostname_intersection_rejects_disjoint_routes() -> None:
    docs = [*_services("a"), *gateway_docs(18080, "127.241.9.9", [
        {"hostnames": ["other.org"], "rules": [{"backendRefs": [{"name": "a", "port": 80}]}]},
    ])]
    gateway = next(d for d in docs if d["kind"] == "Gateway")
    gateway["spec"]["listeners"][0]["hostname"] = "*.example.com"
    config = config_from(docs)
    (route,) = config.routes.http_routes
    assert route.parents[0].conditions[0].reason == "NoMatchingListenerHostname"


@pytest.mark.parametrize(
    ("edit", "path", "expected"),
    [
        (PathEdit("ReplacePrefixMatch", "/bar"), "/foo/x", "/bar/x"),
        (PathEdit("ReplacePrefixMatch", "/"), "/foo/x", "/x"),
        (PathEdit("ReplacePrefixMatch", "/bar"), "/foo", "/bar"),
        (PathEdit("ReplaceFullPath", "/fixed"), "/foo/x", "/fixed"),
    ],
)
def test_path_rewrites(edit: PathEdit, path: str, expected: str) -> None:
    match = CompiledMatch("Prefix", "/foo", 0)
    assert replace_path(path, edit, match) == expected


def test_redirect_location() -> None:
    redirect = Redirect(scheme="https", hostname="new.example", status=301)
    location = redirect_location(
        redirect, scheme="http", host="old", port=8080, path="/a", query="q=1", match=None
    )
    assert location == "https://new.example/a?q=1"
    assert redirect_location(
        Redirect(port=9090), scheme="http", host="h", port=80, path="/", query="", match=None
    ) == "http://h:9090/"
