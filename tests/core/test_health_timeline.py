"""The timeline rule: time to unhealthy < preStop < terminationGracePeriodSeconds."""

from __future__ import annotations

import textwrap

import pytest

from seaway.core.health_timeline import selects, timeline_warnings
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    seaway.io/health-check-protocol: http
    seaway.io/health-check-interval: "2"
    seaway.io/health-check-timeout: "1"
    seaway.io/health-check-unhealthy-threshold: "3"
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: {app}, tier: front}}}}
    spec:
      {grace}
      containers:
      - name: app
        image: x
        {lifecycle}
"""


def warnings_for(app: str = "web", grace: str = "", lifecycle: str = "") -> list[str]:
    text = SERVICE.format(app=app, grace=grace, lifecycle=lifecycle)
    return timeline_warnings(build_state([parse_text(text, "m.yaml")]))


@pytest.mark.parametrize(
    ("grace", "lifecycle", "expected"),
    [
        # time to unhealthy: 2 x 3 + 1 = 7 s
        ("", "lifecycle: {preStop: {exec: {command: [sleep, '10']}}}", []),
        ("", "lifecycle: {preStop: {sleep: {seconds: 10}}}", []),
        ("", 'lifecycle: {preStop: {exec: {command: [sh, -c, "sleep 15"]}}}', []),
        ("", "lifecycle: {preStop: {sleep: {seconds: 7}}}", ["not shorter than the preStop"]),
        ("", "", ["not shorter than the preStop time (0 s)"]),
        (
            "terminationGracePeriodSeconds: 10",
            "lifecycle: {preStop: {sleep: {seconds: 10}}}",
            ["not shorter than terminationGracePeriodSeconds (10)"],
        ),
        (
            "terminationGracePeriodSeconds: 5",
            "lifecycle: {preStop: {sleep: {seconds: 6}}}",
            ["not shorter than the preStop", "not shorter than terminationGracePeriodSeconds"],
        ),
        ("", "lifecycle: {preStop: {httpGet: {path: /stop, port: 80}}}", ["cannot tell how long"]),
    ],
)
def test_timeline_rule(grace: str, lifecycle: str, expected: list[str]) -> None:
    found = warnings_for(grace=grace, lifecycle=lifecycle)
    assert len(found) == len(expected), found
    for warning, part in zip(found, expected, strict=True):
        assert part in warning
        assert warning.startswith("Service default/web and Deployment default/web: ")


def test_pods_that_the_selector_does_not_match_are_not_checked() -> None:
    assert warnings_for(app="other") == []


def test_services_without_health_checks_only_get_the_grace_rule() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec: {selector: {app: web}, ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web-1, labels: {app: web}}
        spec:
          terminationGracePeriodSeconds: 3
          containers:
          - {name: a, lifecycle: {preStop: {exec: {command: [/bin/sleep, "5"]}}}}
        """
    )
    found = timeline_warnings(build_state([parse_text(text, "m.yaml")]))
    assert len(found) == 1 and "Pod default/web-1" in found[0] and "(3)" in found[0]


def test_selects() -> None:
    assert selects({"app": "web"}, {"app": "web", "x": "y"})
    assert not selects({"app": "web"}, {"app": "api"})
    assert not selects({}, {"app": "web"})
