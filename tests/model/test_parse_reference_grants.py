"""Parsing ReferenceGrant and the label selectors of Gateway listeners' allowedRoutes:
valid manifests, and a table of invalid ones, each error located exactly."""

from __future__ import annotations

import textwrap

import pytest

from seaway.model.errors import ConfigError
from seaway.model.label_selectors import LabelRequirement, LabelSelector
from seaway.model.parse import parse_text
from seaway.model.routes import Gateway, GrantFrom, GrantTo, ReferenceGrant
from seaway.model.validate import build_state

SOURCE = "grants.yaml"


def grant(spec: str, *, api_version: str = "gateway.networking.k8s.io/v1") -> str:
    return (
        f"apiVersion: {api_version}\nkind: ReferenceGrant\n"
        f"metadata: {{name: allow, namespace: backends}}\nspec: {spec}\n"
    )


def gateway(selector: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {{name: gw, namespace: infra}}
        spec:
          gatewayClassName: seaway
          listeners:
          - name: http
            port: 8080
            protocol: HTTP
            allowedRoutes:
              namespaces:
                from: Selector
                selector: {selector}
        """)


FROM_ROUTES = "{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}"
TO_SERVICES = '{group: "", kind: Service}'


@pytest.mark.parametrize(
    "api_version", ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]
)
def test_reference_grant_is_read_in_v1_and_v1beta1(api_version: str) -> None:
    text = grant(
        f"{{from: [{FROM_ROUTES}, {{group: gateway.networking.k8s.io, kind: Gateway, "
        "namespace: infra}], "
        f"to: [{TO_SERVICES}, {{group: core, kind: Secret, name: site-cert}}]}}",
        api_version=api_version,
    )
    result = parse_text(text, SOURCE)
    assert result.errors == ()
    (obj,) = result.objects
    assert isinstance(obj, ReferenceGrant)
    assert obj.key == "backends/allow"
    assert obj.grant_from == (
        GrantFrom("gateway.networking.k8s.io", "HTTPRoute", "apps"),
        GrantFrom("gateway.networking.k8s.io", "Gateway", "infra"),
    )
    # "core" is read as the core group, "".
    assert obj.grant_to == (GrantTo("", "Service"), GrantTo("", "Secret", "site-cert"))
    state = build_state([result])
    assert state.reference_grants == {"backends/allow": obj}


def test_reference_grant_in_another_api_group_or_version_is_not_read() -> None:
    alpha = parse_text(
        grant(
            f"{{from: [{FROM_ROUTES}], to: [{TO_SERVICES}]}}",
            api_version="gateway.networking.k8s.io/v1alpha2",
        ),
        SOURCE,
    )
    assert [e.message for e in alpha.errors] == [
        "ReferenceGrant is read as gateway.networking.k8s.io/v1, got "
        "'gateway.networking.k8s.io/v1alpha2'"
    ]
    other_group = parse_text(
        grant(f"{{from: [{FROM_ROUTES}], to: [{TO_SERVICES}]}}", api_version="example.com/v1"),
        SOURCE,
    )
    assert other_group.errors == () and other_group.objects == ()
    assert "skipped ReferenceGrant backends/allow" in other_group.notes[0]


OBJ = "ReferenceGrant backends/allow"
SEVENTEEN = ", ".join([TO_SERVICES] * 17)

BAD_GRANTS = [
    ("no spec", "", "spec", "is required"),
    ("no from", f"{{to: [{TO_SERVICES}]}}", "spec.from", "is required"),
    ("empty from", f"{{from: [], to: [{TO_SERVICES}]}}", "spec.from", "must not be empty"),
    ("no to", f"{{from: [{FROM_ROUTES}]}}", "spec.to", "is required"),
    ("empty to", f"{{from: [{FROM_ROUTES}], to: []}}", "spec.to", "must not be empty"),
    (
        "seventeen to entries",
        f"{{from: [{FROM_ROUTES}], to: [{SEVENTEEN}]}}",
        "spec.to",
        "has 17 entries; at most 16",
    ),
    (
        "from without group",
        f"{{from: [{{kind: HTTPRoute, namespace: apps}}], to: [{TO_SERVICES}]}}",
        "spec.from[0].group",
        'is required ("" for the core API group)',
    ),
    (
        "from without namespace",
        f"{{from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute}}], to: [{TO_SERVICES}]}}",
        "spec.from[0].namespace",
        "is required",
    ),
    (
        "from namespace not a label",
        "{from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: Apps}], "
        f"to: [{TO_SERVICES}]}}",
        "spec.from[0].namespace",
        "'Apps' is not an RFC 1123 label",
    ),
    (
        "from kind missing",
        f"{{from: [{{group: gateway.networking.k8s.io, namespace: apps}}], to: [{TO_SERVICES}]}}",
        "spec.from[0].kind",
        "is required",
    ),
    (
        "to kind not a kind",
        f'{{from: [{FROM_ROUTES}], to: [{{group: "", kind: "my kind"}}]}}',
        "spec.to[0].kind",
        "'my kind' is not a kind",
    ),
    (
        "to group not a DNS name",
        f"{{from: [{FROM_ROUTES}], to: [{{group: Core_Group, kind: Service}}]}}",
        "spec.to[0].group",
        "'Core_Group' is not an API group",
    ),
    (
        "to group not a string",
        f"{{from: [{FROM_ROUTES}], to: [{{group: 5, kind: Service}}]}}",
        "spec.to[0].group",
        "expected a string, got integer 5",
    ),
    (
        "to name empty",
        f'{{from: [{FROM_ROUTES}], to: [{{group: "", kind: Service, name: ""}}]}}',
        "spec.to[0].name",
        "must be 1 to 253 characters",
    ),
    (
        "from entry not a mapping",
        f"{{from: [apps], to: [{TO_SERVICES}]}}",
        "spec.from[0]",
        "expected a mapping, got string",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [pytest.param(spec, field, message, id=name) for name, spec, field, message in BAD_GRANTS],
)
def test_invalid_reference_grants_name_the_field(spec: str, field: str, message: str) -> None:
    text = grant(spec) if spec else grant("{}").replace("spec: {}\n", "")
    errors = list(parse_text(text, SOURCE).errors)
    assert errors == [ConfigError(f"{SOURCE}#1", OBJ, field, errors[0].message)], errors
    assert message in errors[0].message


def test_invalid_grant_is_not_kept() -> None:
    result = parse_text(grant(f"{{from: [{FROM_ROUTES}], to: [{{kind: Service}}]}}"), SOURCE)
    assert result.objects == ()
    assert str(result.errors[0]) == (
        f'{SOURCE}#1: {OBJ} spec.to[0].group: is required ("" for the core API group)'
    )


# -- allowedRoutes.namespaces.selector -------------------------------------------------


def _selector(text: str) -> LabelSelector:
    result = parse_text(gateway(text), SOURCE)
    assert result.errors == (), result.errors
    (obj,) = result.objects
    assert isinstance(obj, Gateway)
    return obj.listeners[0].selector


def test_selector_with_match_labels_and_every_operator() -> None:
    selector = _selector(
        "{matchLabels: {team: web}, matchExpressions: ["
        "{key: env, operator: In, values: [prod, staging]}, "
        "{key: example.com/tier, operator: NotIn, values: [free]}, "
        "{key: shared, operator: Exists}, "
        "{key: retired, operator: DoesNotExist, values: []}]}"
    )
    assert dict(selector.match_labels) == {"team": "web"}
    assert selector.match_expressions == (
        LabelRequirement("env", "In", frozenset({"prod", "staging"})),
        LabelRequirement("example.com/tier", "NotIn", frozenset({"free"})),
        LabelRequirement("shared", "Exists"),
        LabelRequirement("retired", "DoesNotExist"),
    )


GW = "Gateway infra/gw"
SEL = "spec.listeners[0].allowedRoutes.namespaces.selector"

BAD_SELECTORS = [
    (
        "unknown operator",
        "{matchExpressions: [{key: env, operator: Equals, values: [a]}]}",
        f"{SEL}.matchExpressions[0].operator",
        "must be one of In, NotIn, Exists, DoesNotExist, got 'Equals'",
    ),
    (
        "operator lower case",
        "{matchExpressions: [{key: env, operator: in, values: [a]}]}",
        f"{SEL}.matchExpressions[0].operator",
        "got 'in'",
    ),
    (
        "no operator",
        "{matchExpressions: [{key: env, values: [a]}]}",
        f"{SEL}.matchExpressions[0].operator",
        "is required",
    ),
    (
        "no key",
        "{matchExpressions: [{operator: Exists}]}",
        f"{SEL}.matchExpressions[0].key",
        "is required",
    ),
    (
        "In without values",
        "{matchExpressions: [{key: env, operator: In}]}",
        f"{SEL}.matchExpressions[0].values",
        "must not be empty when operator is In",
    ),
    (
        "NotIn with empty values",
        "{matchExpressions: [{key: env, operator: NotIn, values: []}]}",
        f"{SEL}.matchExpressions[0].values",
        "must not be empty when operator is NotIn",
    ),
    (
        "Exists with values",
        "{matchExpressions: [{key: env, operator: Exists, values: [a]}]}",
        f"{SEL}.matchExpressions[0].values",
        "must be empty when operator is Exists",
    ),
    (
        "DoesNotExist with values",
        "{matchExpressions: [{key: env, operator: DoesNotExist, values: [a]}]}",
        f"{SEL}.matchExpressions[0].values",
        "must be empty when operator is DoesNotExist",
    ),
    (
        "value not a string",
        "{matchExpressions: [{key: env, operator: In, values: [1]}]}",
        f"{SEL}.matchExpressions[0].values[0]",
        "expected a string, got integer 1",
    ),
    (
        "value not a label value",
        "{matchExpressions: [{key: env, operator: In, values: ['-prod']}]}",
        f"{SEL}.matchExpressions[0].values[0]",
        "'-prod' is not a label value",
    ),
    (
        "key not a label key",
        "{matchExpressions: [{key: 'a b', operator: Exists}]}",
        f"{SEL}.matchExpressions[0].key",
        "'a b' is not a label key",
    ),
    (
        "key prefix not a DNS name",
        "{matchExpressions: [{key: 'Example.COM/tier', operator: Exists}]}",
        f"{SEL}.matchExpressions[0].key",
        "'Example.COM' is not an RFC 1123 subdomain",
    ),
    (
        "matchExpressions not a list",
        "{matchExpressions: {key: env}}",
        f"{SEL}.matchExpressions",
        "expected a list, got mapping",
    ),
    (
        "matchLabels key not a label key",
        "{matchLabels: {'/team': web}}",
        f"{SEL}.matchLabels[/team]",
        "'/team' is not a label key",
    ),
]


@pytest.mark.parametrize(
    ("selector", "field", "message"),
    [pytest.param(s, f, m, id=name) for name, s, f, m in BAD_SELECTORS],
)
def test_invalid_selectors_name_the_field(selector: str, field: str, message: str) -> None:
    errors = list(parse_text(gateway(selector), SOURCE).errors)
    assert errors == [ConfigError(f"{SOURCE}#1", GW, field, errors[0].message)], errors
    assert message in errors[0].message
