from __future__ import annotations

import pytest

from seaway.lab.spec import LabSpecError, default_lab_text, load_lab, parse_lab


def test_default_lab_is_the_life_of_a_packet_topology() -> None:
    spec = load_lab(None)
    assert spec.client.address == "203.0.113.5"
    assert spec.load_balancer.address == "198.18.0.99"
    assert [n.address for n in spec.nodes] == ["198.18.0.11", "198.18.0.12", "198.18.0.13"]
    assert [n.pods for n in spec.nodes] == [True, True, False]
    assert all(n.pod_cidr.startswith("100.64.") for n in spec.nodes)
    policies = {s.name: s.external_traffic_policy for s in spec.services}
    assert policies == {"web": "Cluster", "web-local": "Local"}
    web = spec.deployment("web")
    assert web.pre_stop_sleep_seconds > spec.propagation_seconds
    assert web.termination_grace_period_seconds > web.pre_stop_sleep_seconds


def test_errors_name_every_bad_field() -> None:
    text = default_lab_text().replace("address: 198.18.0.12", "address: 10.0.0.12")
    text = text.replace("replicas: 3", "replicas: -1")
    with pytest.raises(LabSpecError) as caught:
        parse_lab(text, "my-lab.yaml")
    problems = caught.value.problems
    assert any(p.startswith("deployments[0].replicas:") for p in problems), problems
    assert "my-lab.yaml" in str(caught.value)


def test_cross_field_checks() -> None:
    text = default_lab_text().replace("address: 198.18.0.12", "address: 10.0.0.12")
    text = text.replace("    healthCheckNodePort: 32081\n", "")
    with pytest.raises(LabSpecError) as caught:
        parse_lab(text)
    problems = caught.value.problems
    assert "nodes[1].address: must be inside 198.18.0.0/24" in problems
    assert "services[1].healthCheckNodePort: required with policy Local" in problems


def test_not_a_lab() -> None:
    with pytest.raises(LabSpecError, match="kind: must be Lab"):
        parse_lab("kind: Service\n")
    with pytest.raises(LabSpecError, match="not YAML"):
        parse_lab("a: [\n")
