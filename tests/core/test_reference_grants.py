"""ReferenceGrants in route planning (pure): a table of grants for a cross-namespace
backendRef and for a cross-namespace certificateRef, each case written from the Gateway
API's ReferenceGrant rules; and grants that come and go between configurations."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.l7.tls_authority import Authority, tls_secret

from seaway.core.config import DesiredConfig
from seaway.core.plan import plan
from seaway.core.reference_grants import Reference, ReferenceGrants
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

GROUP = "gateway.networking.k8s.io"


def _config(docs: list[dict[str, Any]]) -> DesiredConfig:
    result = parse_text(yaml.safe_dump_all(docs), "grants.yaml")
    assert not result.errors, result.errors
    return plan(build_state([result]), {})


def _service(namespace: str, name: str, port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        },
    ]


def _gateway(listener: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "seaway"},
            "spec": {"controllerName": "seaway.io/gateway-controller"},
        },
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {
                "gatewayClassName": "seaway",
                "addresses": [{"type": "IPAddress", "value": "127.242.0.1"}],
                "listeners": [listener],
            },
        },
    ]


HTTP_LISTENER = {
    "name": "http",
    "port": 18080,
    "protocol": "HTTP",
    "allowedRoutes": {"namespaces": {"from": "All"}},
}


def _route(backend_refs: list[dict[str, Any]], namespace: str = "apps") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gw", "namespace": "infra"}],
            "rules": [{"backendRefs": backend_refs}],
        },
    }


def _grant(
    grant_from: list[dict[str, str]],
    grant_to: list[dict[str, str]],
    *,
    namespace: str = "backends",
    version: str = "v1",
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "ReferenceGrant",
        "metadata": {"name": "allow", "namespace": namespace},
        "spec": {"from": grant_from, "to": grant_to},
    }


ROUTES_FROM_APPS = {"group": GROUP, "kind": "HTTPRoute", "namespace": "apps"}
SERVICES = {"group": "", "kind": "Service"}


def _backend_docs(*grants: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *_service("backends", "web", 20001),
        *_service("backends", "other", 20002),
        *_service("apps", "local", 20003),
        *_gateway(HTTP_LISTENER),
        _route([{"name": "web", "namespace": "backends", "port": 80}]),
        *grants,
    ]


def _resolved_refs(config: DesiredConfig) -> tuple[bool, str, str]:
    (route,) = config.routes.http_routes
    (parent,) = route.parents
    conditions = {c.type: c for c in parent.conditions}
    assert conditions["Accepted"].status is True
    c = conditions["ResolvedRefs"]
    return c.status, c.reason, c.message


def _answer(config: DesiredConfig) -> str | int:
    """The backend set a request gets, or the status seaway answers with itself."""
    (listener,) = config.http_listeners.values()
    result = listener.routes.match("h", "/", "GET", [], "")
    assert result is not None
    (backend,) = result.action.backends
    return backend.backend_set or backend.status


# (name, grants, whether the backendRef to Service backends/web is permitted)
BACKEND_CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("no grant", [], False),
    (
        "grant for HTTPRoutes of the route's namespace to Services",
        [_grant([ROUTES_FROM_APPS], [SERVICES])],
        True,
    ),
    ("v1beta1 grant", [_grant([ROUTES_FROM_APPS], [SERVICES], version="v1beta1")], True),
    ("grant naming the Service", [_grant([ROUTES_FROM_APPS], [{**SERVICES, "name": "web"}])], True),
    (
        "grant naming another Service",
        [_grant([ROUTES_FROM_APPS], [{**SERVICES, "name": "other"}])],
        False,
    ),
    ("grant to group core", [_grant([ROUTES_FROM_APPS], [{**SERVICES, "group": "core"}])], True),
    (
        "grant from another namespace",
        [_grant([{**ROUTES_FROM_APPS, "namespace": "elsewhere"}], [SERVICES])],
        False,
    ),
    (
        "grant from Gateways, not HTTPRoutes",
        [_grant([{**ROUTES_FROM_APPS, "kind": "Gateway"}], [SERVICES])],
        False,
    ),
    (
        "grant from HTTPRoutes of another group",
        [_grant([{**ROUTES_FROM_APPS, "group": "example.com"}], [SERVICES])],
        False,
    ),
    (
        "grant to Secrets, not Services",
        [_grant([ROUTES_FROM_APPS], [{"group": "", "kind": "Secret"}])],
        False,
    ),
    (
        "grant to Services of another group",
        [_grant([ROUTES_FROM_APPS], [{"group": "example.com", "kind": "Service"}])],
        False,
    ),
    (
        "grant in the route's namespace, not the Service's",
        [_grant([ROUTES_FROM_APPS], [SERVICES], namespace="apps")],
        False,
    ),
    (
        "entries are alternatives: one from and one to entry match",
        [
            _grant(
                [{**ROUTES_FROM_APPS, "namespace": "elsewhere"}, ROUTES_FROM_APPS],
                [{"group": "", "kind": "Secret"}, {**SERVICES, "name": "web"}],
            )
        ],
        True,
    ),
    (
        "from and to must match in the same grant",
        [
            {
                **_grant([ROUTES_FROM_APPS], [{"group": "", "kind": "Secret"}]),
                "metadata": {"name": "one", "namespace": "backends"},
            },
            {
                **_grant([{**ROUTES_FROM_APPS, "namespace": "elsewhere"}], [SERVICES]),
                "metadata": {"name": "two", "namespace": "backends"},
            },
        ],
        False,
    ),
]


@pytest.mark.parametrize(
    ("grants", "permitted"),
    [pytest.param(g, p, id=name) for name, g, p in BACKEND_CASES],
)
def test_cross_namespace_backend_ref(grants: list[dict[str, Any]], permitted: bool) -> None:
    config = _config(_backend_docs(*grants))
    status, reason, message = _resolved_refs(config)
    if permitted:
        assert (status, reason) == (True, "ResolvedRefs")
        assert _answer(config) == "backends/web:80/TCP"
    else:
        assert (status, reason) == (False, "RefNotPermitted")
        assert message == (
            "backendRef backends/web: Service backends/web is in another namespace and no "
            "ReferenceGrant in backends allows gateway.networking.k8s.io/HTTPRoute from apps "
            "to refer to core/Service web"
        )
        # An invalid backendRef answers 500 for its share (HTTPRouteRule.backendRefs).
        assert _answer(config) == 500


def test_a_refused_backend_ref_answers_500_for_its_weight_share_only() -> None:
    docs = _backend_docs()
    route = next(d for d in docs if d["kind"] == "HTTPRoute")
    route["spec"]["rules"][0]["backendRefs"] = [
        {"name": "local", "port": 80, "weight": 3},
        {"name": "web", "namespace": "backends", "port": 80, "weight": 1},
    ]
    (listener,) = _config(docs).http_listeners.values()
    result = listener.routes.match("h", "/", "GET", [], "")
    assert result is not None
    local, refused = result.action.backends
    assert (local.backend_set, local.weight) == ("apps/local:80/TCP", 3)
    assert (refused.backend_set, refused.weight, refused.status) == ("", 1, 500)


def test_same_namespace_references_need_no_grant() -> None:
    grants = ReferenceGrants({})
    same = Reference(GROUP, "HTTPRoute", "apps", "", "Service", "apps", "web")
    assert grants.permits(same)
    assert not grants.permits(Reference(GROUP, "HTTPRoute", "apps", "", "Service", "b", "web"))


def test_adding_and_deleting_a_grant_changes_routing_at_the_next_configuration() -> None:
    grant = _grant([ROUTES_FROM_APPS], [SERVICES])
    before = _config(_backend_docs())
    granted = _config(_backend_docs(grant))
    revoked = _config(_backend_docs())
    assert _answer(before) == 500
    assert _answer(granted) == "backends/web:80/TCP"
    # Deleting the grant revokes the reference it allowed.
    assert _answer(revoked) == 500
    assert _resolved_refs(revoked)[1] == "RefNotPermitted"
    # The Service's backend set is only used while some route may reach it.
    assert "backends/web:80/TCP" in granted.http_backend_sets
    assert "backends/web:80/TCP" not in revoked.http_backend_sets


# -- certificateRefs -------------------------------------------------------------------

GATEWAYS_FROM_INFRA = {"group": GROUP, "kind": "Gateway", "namespace": "infra"}
SECRETS = {"group": "", "kind": "Secret"}


@pytest.fixture(scope="module")
def cert_secret() -> dict[str, Any]:
    authority = Authority.create()
    return tls_secret("site", *authority.issue("site", ["site.test"]), namespace="certs")


# (name, grants, whether listener https may use Secret certs/site)
CERTIFICATE_CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("no grant", [], False),
    (
        "grant for Gateways of the Gateway's namespace to Secrets",
        [_grant([GATEWAYS_FROM_INFRA], [SECRETS], namespace="certs")],
        True,
    ),
    (
        "grant naming the Secret",
        [_grant([GATEWAYS_FROM_INFRA], [{**SECRETS, "name": "site"}], namespace="certs")],
        True,
    ),
    (
        "grant naming another Secret",
        [_grant([GATEWAYS_FROM_INFRA], [{**SECRETS, "name": "old"}], namespace="certs")],
        False,
    ),
    (
        "grant from HTTPRoutes, not Gateways",
        [_grant([{**GATEWAYS_FROM_INFRA, "kind": "HTTPRoute"}], [SECRETS], namespace="certs")],
        False,
    ),
    (
        "grant from another namespace",
        [_grant([{**GATEWAYS_FROM_INFRA, "namespace": "apps"}], [SECRETS], namespace="certs")],
        False,
    ),
    (
        "grant to Services, not Secrets",
        [_grant([GATEWAYS_FROM_INFRA], [SERVICES], namespace="certs")],
        False,
    ),
    (
        "grant in the Gateway's namespace, not the Secret's",
        [_grant([GATEWAYS_FROM_INFRA], [SECRETS], namespace="infra")],
        False,
    ),
]


@pytest.mark.parametrize(
    ("grants", "permitted"),
    [pytest.param(g, p, id=name) for name, g, p in CERTIFICATE_CASES],
)
def test_cross_namespace_certificate_ref(
    cert_secret: dict[str, Any], grants: list[dict[str, Any]], permitted: bool
) -> None:
    listener = {
        "name": "https",
        "port": 18443,
        "protocol": "HTTPS",
        "hostname": "site.test",
        "tls": {"certificateRefs": [{"name": "site", "namespace": "certs"}]},
    }
    docs = [
        *_gateway(listener),
        *_service("infra", "web", 20004),
        _route([{"name": "web", "port": 80}], namespace="infra"),
        cert_secret,
        *grants,
    ]
    config = _config(docs)
    (gateway,) = config.routes.gateways
    conditions = {c.type: c for c in gateway.listeners[0].conditions}
    if permitted:
        assert conditions["Accepted"].status is True
        listener_config = config.http_listeners["HTTPS/127.242.0.1:18443"]
        assert listener_config.tls is not None
    else:
        assert (conditions["Accepted"].status, conditions["Accepted"].reason) == (
            False,
            "RefNotPermitted",
        )
        assert conditions["Accepted"].message == (
            "Secret certs/site is in another namespace and no ReferenceGrant in certs allows "
            "gateway.networking.k8s.io/Gateway from infra to refer to core/Secret site"
        )
        assert config.http_listeners == {}
