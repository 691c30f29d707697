"""seaway.io/slow-start-window: validated, planned into the backend set, used by the balancer."""

from __future__ import annotations

import random
from collections import Counter

from seaway.core.balancers.registry import balancer_for
from seaway.core.plan import plan
from seaway.model.parse import parse_text
from seaway.model.validate import build_state

MANIFEST = """
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations: {{seaway.io/algorithm: round-robin, seaway.io/slow-start-window: "{window}"}}
spec:
  type: LoadBalancer
  ports: [{{name: http, port: 80}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints:
  - addresses: [10.0.0.1]
  - addresses: [10.0.0.2]
"""


def test_invalid_window_is_an_error_naming_the_annotation() -> None:
    result = parse_text(MANIFEST.format(window="soon"), "web.yaml")
    assert [(e.obj, e.field) for e in result.errors] == [
        ("Service default/web", "metadata.annotations[seaway.io/slow-start-window]")
    ]


def test_window_reaches_the_backend_set_and_ramps_a_new_backend() -> None:
    state = build_state([parse_text(MANIFEST.format(window="30"), "web.yaml")])
    config = plan(state, {})
    (backend_set,) = config.backend_sets.values()
    assert backend_set.slow_start_window == 30.0
    # Both backends are new at t=0; a third joining at t=60 must ramp up, not take a
    # full third of the picks at once.
    balancer = balancer_for(backend_set, rng=random.Random(1))
    for t in range(60):
        balancer.pick(0, now=float(t))
    newcomer = backend_set.backends[0].__class__("10.0.0.3", 8080)
    balancer.update((*backend_set.backends, newcomer))
    early = Counter(balancer.pick(0, now=60.0 + i * 0.001) for i in range(300))
    late = Counter(balancer.pick(0, now=200.0 + i * 0.001) for i in range(300))
    assert early[newcomer] < 60  # well under a third at the start of its window
    assert 90 <= late[newcomer] <= 110  # a full third once the window is over
