"""HTTPRoute backendRefs[].filters: header modifiers read as the rule's are, everything
else refused with an error naming the file#document, the object and the field."""

from __future__ import annotations

import textwrap

import pytest

from seaway.model.errors import ConfigError
from seaway.model.parse import parse_text
from seaway.model.routes import HeaderModifier, HTTPRoute, RouteFilter

SOURCE = "routes.yaml"
OBJECT = "HTTPRoute shop/r"
REF = "spec.rules[0].backendRefs[1]"


def _route(backend_filters: str, rule_filters: str = "[]") -> str:
    """An HTTPRoute (second document of the text) whose second backendRef has
    ``backend_filters`` (a YAML flow list)."""
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Namespace
        metadata: {{name: shop}}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {{name: r, namespace: shop}}
        spec:
          parentRefs: [{{name: gw}}]
          rules:
          - filters: {rule_filters}
            backendRefs:
            - {{name: blue, port: 80}}
            - {{name: green, port: 80, filters: {backend_filters}}}
        """
    )


def _parsed(text: str) -> HTTPRoute:
    result = parse_text(text, SOURCE)
    assert result.errors == ()
    (route,) = [o for o in result.objects if isinstance(o, HTTPRoute)]
    return route


def _errors(text: str) -> list[ConfigError]:
    result = parse_text(text, SOURCE)
    assert not any(isinstance(o, HTTPRoute) for o in result.objects)  # the object is refused
    return list(result.errors)


def test_header_modifiers_are_read_per_backend_ref() -> None:
    text = _route(
        "[{type: RequestHeaderModifier, requestHeaderModifier: "
        "{set: [{name: X-Pool, value: green}], add: [{name: X-Tag, value: a}], "
        "remove: [X-Drop]}}, "
        "{type: ResponseHeaderModifier, responseHeaderModifier: "
        "{add: [{name: X-Served-By, value: green}]}}]"
    )
    route = _parsed(text)
    blue, green = route.rules[0].backend_refs
    assert blue.filters == ()
    assert green.filters == (
        RouteFilter(
            type="RequestHeaderModifier",
            request_header_modifier=HeaderModifier(
                set=(("X-Pool", "green"),), add=(("X-Tag", "a"),), remove=("X-Drop",)
            ),
        ),
        RouteFilter(
            type="ResponseHeaderModifier",
            response_header_modifier=HeaderModifier(add=(("X-Served-By", "green"),)),
        ),
    )


def test_an_empty_filter_list_is_no_filter() -> None:
    (_, green) = _parsed(_route("[]")).rules[0].backend_refs
    assert green.filters == ()


# (name, backendRef filters, field of the error, words of its message)
INVALID = [
    (
        "redirect-belongs-to-the-rule",
        "[{type: RequestRedirect, requestRedirect: {hostname: x.example}}]",
        f"{REF}.filters[0].type",
        "filter 'RequestRedirect' is not supported in a backendRef (supported: "
        "RequestHeaderModifier, ResponseHeaderModifier); the rule's filters take it",
    ),
    (
        "rewrite-belongs-to-the-rule",
        "[{type: URLRewrite, urlRewrite: {hostname: x.example}}]",
        f"{REF}.filters[0].type",
        "filter 'URLRewrite' is not supported in a backendRef",
    ),
    (
        "mirror",
        "[{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}}}]",
        f"{REF}.filters[0].type",
        "filter 'RequestMirror' is not supported in a backendRef",
    ),
    (
        "extension-ref",
        "[{type: ExtensionRef, extensionRef: {group: x.io, kind: F, name: f}}]",
        f"{REF}.filters[0].type",
        "filter 'ExtensionRef' is not supported in a backendRef",
    ),
    (
        "bad-header-name",
        "[{type: RequestHeaderModifier, requestHeaderModifier: "
        "{set: [{name: 'X Pool', value: v}]}}]",
        f"{REF}.filters[0].requestHeaderModifier.set[0].name",
        "'X Pool' is not a header name",
    ),
    (
        "value-with-newline",
        '[{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-A, value: "a\\r\\nB: c"}]}}]',  # noqa: E501
        f"{REF}.filters[0].responseHeaderModifier.add[0].value",
        "must not contain CR, LF or NUL",
    ),
    (
        "body-missing",
        "[{type: RequestHeaderModifier}]",
        f"{REF}.filters[0].requestHeaderModifier",
        "is required",
    ),
    (
        "modifier-twice",
        "[{type: RequestHeaderModifier, requestHeaderModifier: {remove: [A]}}, "
        "{type: RequestHeaderModifier, requestHeaderModifier: {remove: [B]}}]",
        f"{REF}.filters",
        "RequestHeaderModifier may appear at most once",
    ),
    (
        "not-a-list",
        "{type: RequestHeaderModifier}",
        f"{REF}.filters",
        "a list",
    ),
]


@pytest.mark.parametrize(
    ("backend_filters", "field", "words"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_backend_ref_filters_are_errors(
    backend_filters: str, field: str, words: str
) -> None:
    (error,) = _errors(_route(backend_filters))
    assert (error.source, error.obj, error.field) == (f"{SOURCE}#2", OBJECT, field)
    assert words in error.message


def test_the_rule_keeps_its_own_filter_types() -> None:
    """Redirects stay valid in the rule; a mirror is refused there too, as before."""
    redirect = "[{type: RequestRedirect, requestRedirect: {hostname: x.example}}]"
    route = _parsed(_route("[]", rule_filters=redirect))
    assert route.rules[0].filters[0].type == "RequestRedirect"
    mirror = "[{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}}}]"
    (error,) = _errors(_route("[]", rule_filters=mirror))
    assert error.field == "spec.rules[0].filters[0].type"
    assert "filter 'RequestMirror' is not supported in a rule" in error.message
