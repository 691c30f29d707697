"""The two readers the kind parsers share: ``mapping_item`` (a list item that must be a
mapping) and ``FieldReader.section`` (an optional settings block with a closed set of
fields), on their own and through the parsers that use them."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from seaway.model.errors import ConfigError
from seaway.model.fields import FieldReader, mapping_item
from seaway.model.parse import parse_text


@dataclass
class _Out:
    errors: list[ConfigError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _reader() -> tuple[FieldReader, _Out]:
    out = _Out()
    return FieldReader("f.yaml", "Thing t", out), out


@mapping_item
def _name_of(r: FieldReader, m: Mapping[str, object], path: str) -> str | None:
    return r.string(m, path, "name", required=True)


def test_mapping_item_reads_mappings_and_leaves_out_the_rest() -> None:
    r, out = _reader()
    doc: dict[str, object] = {"items": [{"name": "a"}, "b", {"name": 3}, {"name": "d"}]}
    assert r.list_of(doc, "spec", "items", _name_of) == [
        ("spec.items[0]", "a"),
        ("spec.items[3]", "d"),
    ]
    assert [(e.field, e.message) for e in out.errors] == [
        ("spec.items[1]", "expected a mapping, got string 'b'"),
        ("spec.items[2].name", "expected a string, got integer 3 (quote it)"),
    ]


def test_section_absent_is_none_without_error() -> None:
    r, out = _reader()
    assert r.section({"other": 1}, "spec", "block", frozenset({"a"})) is None
    assert out.errors == []


def test_section_not_a_mapping_is_one_type_error() -> None:
    r, out = _reader()
    assert r.section({"block": [1]}, "spec", "block", frozenset({"a"})) is None
    assert [(e.field, e.message) for e in out.errors] == [
        ("spec.block", "expected a mapping, got list")
    ]


def test_section_reports_each_unknown_field_and_keeps_the_mapping() -> None:
    r, out = _reader()
    block = {"a": 1, "b": 2, "c": 3}
    assert r.section({"block": block}, "spec", "block", frozenset({"a"})) == block
    assert [(e.field, e.message) for e in out.errors] == [
        ("spec.block.b", "unknown field (known: a)"),
        ("spec.block.c", "unknown field (known: a)"),
    ]


def _errors(text: str) -> list[tuple[str, str, str]]:
    result = parse_text(textwrap.dedent(text), "m.yaml")
    return [(e.obj, e.field, e.message) for e in result.errors]


ROUTE = """\
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r, namespace: shop}
    spec:
      parentRefs: [gw]
      rules:
      - matches: [{headers: [x], path: {value: /}}]
        filters: [f, {type: RequestHeaderModifier, requestHeaderModifier: {set: [y]}}]
        backendRefs: [{name: a, filters: [z]}, b]
    """

GATEWAY = """\
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: g, namespace: shop}
    spec:
      gatewayClassName: c
      addresses: [a]
      listeners:
      - l
      - name: web
        port: 80
        protocol: HTTP
        allowedRoutes: {kinds: [k]}
        tls: {certificateRefs: [c]}
    """


@pytest.mark.parametrize(
    ("text", "obj", "paths"),
    [
        (
            ROUTE,
            "HTTPRoute shop/r",
            [
                "spec.rules[0].matches[0].headers[0]",
                "spec.rules[0].filters[0]",
                "spec.rules[0].filters[1].requestHeaderModifier.set[0]",
                "spec.rules[0].backendRefs[0].filters[0]",
                "spec.rules[0].backendRefs[1]",
                "spec.parentRefs[0]",  # rules are read first
            ],
        ),
        (
            GATEWAY,
            "Gateway shop/g",
            [
                "spec.listeners[0]",
                "spec.listeners[1].allowedRoutes.kinds[0]",
                "spec.listeners[1].tls.certificateRefs[0]",
                "spec.addresses[0]",
            ],
        ),
    ],
    ids=["httproute", "gateway"],
)
def test_items_that_are_not_mappings_are_named_in_order(
    text: str, obj: str, paths: list[str]
) -> None:
    errors = _errors(text)
    assert [(o, p) for o, p, _ in errors] == [(obj, p) for p in paths]
    assert all(m.startswith("expected a mapping, got string") for _, _, m in errors)


def test_each_settings_section_rejects_its_unknown_fields() -> None:
    text = """\
        apiVersion: seaway.io/v1alpha1
        kind: SeawayConfig
        metadata: {name: c}
        spec:
          healthCheck: {pod: true}
          outlierDetection: {enable: true}
          ingress: {adress: 127.0.0.1}
          http: {maxHead: 1}
          accessLog: {file: x}
          keepalive: {idle: 5}
        """
    paths = [p for _, p, m in _errors(text) if m.startswith("unknown field")]
    assert sorted(paths) == [
        "spec.accessLog.file",
        "spec.healthCheck.pod",
        "spec.http.maxHead",
        "spec.ingress.adress",
        "spec.keepalive.idle",
        "spec.outlierDetection.enable",
    ]
