"""Cross-object validation and ClusterState assembly."""

from __future__ import annotations

import textwrap

import pytest

from seaway.model.cluster import ClusterState
from seaway.model.errors import InvalidConfiguration
from seaway.model.parse import parse_text
from seaway.model.validate import build_state


def state_of(*files: tuple[str, str]) -> ClusterState:
    return build_state(parse_text(textwrap.dedent(text), name) for name, text in files)


def errors_of(*files: tuple[str, str]) -> list[tuple[str, str, str, str]]:
    with pytest.raises(InvalidConfiguration) as caught:
        state_of(*files)
    return [(e.source, e.obj, e.field, e.message) for e in caught.value.errors]


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, targetPort: web}]
"""


def slice_doc(name: str, ports: str, service: str = "web") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: {name}
          namespace: shop
          labels: {{kubernetes.io/service-name: {service}}}
        addressType: IPv4
        ports: {ports}
        endpoints: [{{addresses: [192.0.2.1]}}]
        """
    )


def test_duplicate_object_across_two_files_names_both_places() -> None:
    errors = errors_of(("a.yaml", SERVICE), ("b.yaml", "---\n---\n" + SERVICE))
    assert errors == [
        (
            "b.yaml#2",  # a leading "---" opens the first document
            "Service shop/web",
            "metadata.name",
            "duplicate object: Service shop/web is already defined in a.yaml#1",
        )
    ]


def test_same_name_in_other_namespace_or_kind_is_not_a_duplicate() -> None:
    other = SERVICE.replace("namespace: shop", "namespace: prod")
    state = state_of(
        ("a.yaml", SERVICE),
        ("b.yaml", other),
        ("c.yaml", slice_doc("web", "[{name: http, port: 80}]")),
    )
    assert sorted(state.services) == ["prod/web", "shop/web"]


def test_second_seaway_config_is_an_error_whatever_its_name() -> None:
    first = "apiVersion: seaway.io/v1alpha1\nkind: SeawayConfig\nmetadata: {name: one}\n"
    second = first.replace("one", "two")
    assert errors_of(("a.yaml", first), ("b.yaml", second)) == [
        (
            "b.yaml#1",
            "SeawayConfig two",
            "metadata.name",
            "a second SeawayConfig: SeawayConfig one is already defined in a.yaml#1",
        )
    ]


def test_named_target_port_no_slice_port_matches_is_an_error() -> None:
    slices = (
        slice_doc("web-a", "[{name: metrics, port: 9090}]")
        + "---\n"
        + slice_doc("web-b", "[{name: http, port: 8080, protocol: UDP}]")
    )
    assert errors_of(("svc.yaml", SERVICE), ("eps.yaml", slices)) == [
        (
            "svc.yaml#1",
            "Service shop/web",
            "spec.ports[0].targetPort",
            "no EndpointSlice port matches name 'http' or 'web'/TCP; the slices offer "
            "'http'/UDP, 'metrics'/TCP",
        )
    ]


@pytest.mark.parametrize("ports", ["[{name: http, port: 8080}]", "[{name: web, port: 8080}]"])
def test_named_target_port_matched_by_port_name_or_target_name(ports: str) -> None:
    state = state_of(("svc.yaml", SERVICE), ("eps.yaml", slice_doc("web-a", ports)))
    assert [s.meta.name for s in state.slices_for("shop/web")] == ["web-a"]


def test_service_without_slices_is_fine() -> None:
    state = state_of(("svc.yaml", SERVICE))
    assert state.slices_for("shop/web") == ()
    assert state.notes == ()


def test_numeric_target_port_without_matching_slice_port_is_a_note() -> None:
    service = SERVICE.replace("targetPort: web", "targetPort: 8080")
    state = state_of(("svc.yaml", service), ("eps.yaml", slice_doc("web-a", "[{port: 8080}]")))
    assert state.notes == (
        "svc.yaml#1: Service shop/web: spec.ports[0]: no EndpointSlice port matches name "
        "'http'/TCP; the slices offer ''/TCP; the port has no endpoints",
    )


def test_slice_without_its_service_is_a_note_and_kept() -> None:
    state = state_of(("eps.yaml", slice_doc("api-1", "[{port: 80}]", service="api")))
    assert state.notes == (
        "eps.yaml#1: EndpointSlice shop/api-1: Service shop/api not found; "
        "its endpoints are not used",
    )
    assert [s.meta.name for s in state.slices_for("shop/api")] == ["api-1"]


def test_parse_and_cross_object_errors_are_reported_together() -> None:
    bad_pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\n"
    errors = errors_of(("a.yaml", SERVICE), ("b.yaml", SERVICE), ("c.yaml", bad_pool))
    assert [(source, field) for source, _, field, _ in errors] == [
        ("c.yaml#1", "spec"),
        ("b.yaml#1", "metadata.name"),
    ]


def test_state_keys_sorting_and_immutability() -> None:
    others = textwrap.dedent(
        """\
        apiVersion: v1
        kind: Node
        metadata: {name: node-a}
        ---
        apiVersion: metallb.io/v1beta1
        kind: IPAddressPool
        metadata: {name: public, namespace: metallb-system}
        spec: {addresses: [192.0.2.0/28]}
        ---
        apiVersion: seaway.io/v1alpha1
        kind: SeawayConfig
        metadata: {name: seaway}
        spec: {algorithm: random}
        """
    )
    slices = "---\n".join(
        slice_doc(name, "[{name: http, port: 8080}]") for name in ("web-c", "web-a", "web-b")
    )
    state = state_of(("svc.yaml", SERVICE), ("eps.yaml", slices), ("more.yaml", others))
    assert list(state.services) == ["shop/web"]
    assert list(state.slices_by_service) == ["shop/web"]
    assert [s.meta.name for s in state.slices_for("shop/web")] == ["web-a", "web-b", "web-c"]
    assert list(state.nodes) == ["node-a"]
    assert list(state.pools) == ["metallb-system/public"]
    assert state.settings.algorithm == "random"
    with pytest.raises(TypeError):
        state.services["x"] = state.services["shop/web"]  # type: ignore[index]


def test_no_input_gives_default_settings() -> None:
    state = build_state([])
    assert state == ClusterState()
    assert state.settings.maglev_table_size == 65537
