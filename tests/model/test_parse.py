"""Manifest parsing: a table of bad manifests, each error located exactly; a full round trip."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from seaway.model.errors import ConfigError
from seaway.model.objects import (
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    IPAddressPool,
    KeepaliveSettings,
    Node,
    ObjectMeta,
    SeawaySettings,
    Service,
    ServicePort,
    Taint,
)
from seaway.model.parse import (
    describe,
    is_prime,
    kind_of,
    parse_document,
    parse_text,
    split_host_port,
)

SOURCE = "m.yaml"


def parse_errors(text: str, source: str = SOURCE) -> list[ConfigError]:
    return list(parse_text(textwrap.dedent(text), source).errors)


def svc(spec: str, *, meta: str = "{name: web}") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {meta}\nspec: {spec}\n"


def eps(body: str, *, labels: str = "{kubernetes.io/service-name: web}") -> str:
    return (
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        f"metadata: {{name: web-1, namespace: shop, labels: {labels}}}\n{body}\n"
    )


def pool(spec: str) -> str:
    head = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\n"
    return f"{head}spec: {spec}\n"


def config(spec: str) -> str:
    return (
        f"apiVersion: seaway.io/v1alpha1\nkind: SeawayConfig\nmetadata: {{name: c}}\nspec: {spec}\n"
    )


@dataclass(frozen=True)
class Bad:
    id: str
    text: str
    obj: str
    field: str
    message: str  # a fragment of the message
    source: str = f"{SOURCE}#1"


SVC = "Service default/web"
EPS = "EndpointSlice shop/web-1"
POOL = "IPAddressPool default/p"
CFG = "SeawayConfig c"
ADDR = "addressType: IPv4\n"

BAD = [
    Bad(
        "not a mapping", "- a\n- b\n", "", "", "expected a Kubernetes object (a mapping), got list"
    ),
    Bad("no kind", "apiVersion: v1\nmetadata: {name: x}\n", "", "kind", "is required"),
    Bad(
        "no apiVersion",
        "kind: Service\nmetadata: {name: x}\n",
        "Service default/x",
        "apiVersion",
        "is required",
    ),
    Bad(
        "no name",
        "apiVersion: v1\nkind: Service\nmetadata: {}\n",
        "Service",
        "metadata.name",
        "is required",
    ),
    Bad("no metadata", "apiVersion: v1\nkind: Node\n", "Node", "metadata", "is required"),
    Bad(
        "wrong apiVersion for a known kind",
        eps(ADDR).replace("discovery.k8s.io/v1", "discovery.k8s.io/v1beta1"),
        EPS,
        "apiVersion",
        "EndpointSlice is read as discovery.k8s.io/v1, got 'discovery.k8s.io/v1beta1'",
    ),
    Bad(
        "core kind in v2",
        svc("{ports: [{port: 80}]}").replace("v1", "v2"),
        SVC,
        "apiVersion",
        "read as v1",
    ),
    Bad(
        "uppercase Service name",
        svc("{ports: [{port: 80}]}", meta="{name: Web}"),
        "Service default/Web",
        "metadata.name",
        "not an RFC 1035 label",
    ),
    Bad(
        "label value not a string",
        svc("{ports: [{port: 80}]}", meta="{name: web, labels: {v: 1.5}}"),
        SVC,
        "metadata.labels[v]",
        "expected a string, got number 1.5",
    ),
    Bad(
        "port as string",
        svc("{ports: [{port: '80'}]}"),
        SVC,
        "spec.ports[0].port",
        "expected an integer, got string '80'",
    ),
    Bad(
        "port as boolean",
        svc("{ports: [{port: true}]}"),
        SVC,
        "spec.ports[0].port",
        "expected an integer, got boolean",
    ),
    Bad(
        "port too large",
        svc("{ports: [{port: 70000}]}"),
        SVC,
        "spec.ports[0].port",
        "must be between 1 and 65535, got 70000",
    ),
    Bad("port zero", svc("{ports: [{port: 0}]}"), SVC, "spec.ports[0].port", "between 1 and 65535"),
    Bad("port missing", svc("{ports: [{name: a}]}"), SVC, "spec.ports[0].port", "is required"),
    Bad(
        "ports a mapping",
        svc("{ports: {port: 80}}"),
        SVC,
        "spec.ports",
        "expected a list, got mapping",
    ),
    Bad(
        "targetPort out of range",
        svc("{ports: [{port: 80, targetPort: 65536}]}"),
        SVC,
        "spec.ports[0].targetPort",
        "between 1 and 65535",
    ),
    Bad(
        "targetPort bad name",
        svc("{ports: [{port: 80, targetPort: HTTP}]}"),
        SVC,
        "spec.ports[0].targetPort",
        "neither a port number nor a port name",
    ),
    Bad(
        "targetPort name too long",
        svc("{ports: [{port: 80, targetPort: abcdefghijklmnop}]}"),
        SVC,
        "spec.ports[0].targetPort",
        "IANA_SVC_NAME",
    ),
    Bad(
        "targetPort name all digits",
        svc("{ports: [{port: 80, targetPort: '8080'}]}"),
        SVC,
        "spec.ports[0].targetPort",
        "at least one letter",
    ),
    Bad(
        "protocol lowercase",
        svc("{ports: [{port: 80, protocol: tcp}]}"),
        SVC,
        "spec.ports[0].protocol",
        "must be one of TCP, UDP, SCTP, got 'tcp'",
    ),
    Bad(
        "second port unnamed",
        svc("{ports: [{name: a, port: 80}, {port: 81}]}"),
        SVC,
        "spec.ports[1].name",
        "is required when a Service has more than one port",
    ),
    Bad(
        "duplicate port names",
        svc("{ports: [{name: a, port: 80}, {name: a, port: 81}]}"),
        SVC,
        "spec.ports[1].name",
        "duplicate name 'a' (spec.ports[0])",
    ),
    Bad(
        "duplicate port and protocol",
        svc("{ports: [{name: a, port: 80}, {name: b, port: 80}]}"),
        SVC,
        "spec.ports[1]",
        "duplicate port 80/TCP (spec.ports[0])",
    ),
    Bad("no ports", svc("{type: LoadBalancer}"), SVC, "spec.ports", "at least one port"),
    Bad(
        "type typo",
        svc("{type: Loadbalancer, ports: [{port: 80}]}"),
        SVC,
        "spec.type",
        "must be one of ClusterIP, NodePort, LoadBalancer, ExternalName",
    ),
    Bad(
        "nodePort on ClusterIP",
        svc("{ports: [{port: 80, nodePort: 30000}]}"),
        SVC,
        "spec.ports[0].nodePort",
        "NodePort or LoadBalancer",
    ),
    Bad(
        "healthCheckNodePort with Cluster policy",
        svc("{type: LoadBalancer, healthCheckNodePort: 32000, ports: [{port: 80}]}"),
        SVC,
        "spec.healthCheckNodePort",
        "type is LoadBalancer and externalTrafficPolicy is Local",
    ),
    Bad(
        "traffic policy legacy Global",
        svc("{externalTrafficPolicy: Global, ports: [{port: 80}]}"),
        SVC,
        "spec.externalTrafficPolicy",
        "must be one of Cluster, Local",
    ),
    Bad(
        "bad external IP",
        svc("{externalIPs: [192.0.2.1, 192.0.2.300], ports: [{port: 80}]}"),
        SVC,
        "spec.externalIPs[1]",
        "'192.0.2.300' is not a valid IP address",
    ),
    Bad(
        "bad loadBalancerIP",
        svc("{type: LoadBalancer, loadBalancerIP: x, ports: [{port: 80}]}"),
        SVC,
        "spec.loadBalancerIP",
        "not a valid IP address",
    ),
    Bad(
        "bad source range",
        svc("{loadBalancerSourceRanges: [10.0.0.0/33], ports: [{port: 80}]}"),
        SVC,
        "spec.loadBalancerSourceRanges[0]",
        "not a valid CIDR",
    ),
    Bad(
        "loadBalancerClass on ClusterIP",
        svc("{loadBalancerClass: x/y, ports: [{port: 80}]}"),
        SVC,
        "spec.loadBalancerClass",
        "only be set when type is LoadBalancer",
    ),
    Bad(
        "affinity timeout too long",
        svc(
            "{sessionAffinity: ClientIP,"
            " sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}, ports: [{port: 80}]}"
        ),
        SVC,
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "between 1 and 86400",
    ),
    Bad(
        "unknown algorithm annotation",
        svc(
            "{ports: [{port: 80}]}", meta="{name: web, annotations: {seaway.io/algorithm: fastest}}"
        ),
        SVC,
        "metadata.annotations[seaway.io/algorithm]",
        "must be one of dh, lc, least-request, maglev, nq, peak-ewma, random, ring-hash, "
        "round-robin, sed, sh, wlc, got 'fastest'",
    ),
    Bad(
        "bad hash-on annotation",
        svc("{ports: [{port: 80}]}", meta="{name: web, annotations: {seaway.io/hash-on: dst}}"),
        SVC,
        "metadata.annotations[seaway.io/hash-on]",
        "got 'dst'",
    ),
    Bad(
        "bad proxy-protocol annotation",
        svc(
            "{ports: [{port: 80}]}", meta="{name: web, annotations: {seaway.io/proxy-protocol: v3}}"
        ),
        SVC,
        "metadata.annotations[seaway.io/proxy-protocol]",
        "must be one of v1, v2",
    ),
    Bad(
        "accept-proxy-protocol not a boolean word",
        svc(
            "{ports: [{port: 80}]}",
            meta="{name: web, annotations: {seaway.io/accept-proxy-protocol: 'yes'}}",
        ),
        SVC,
        "metadata.annotations[seaway.io/accept-proxy-protocol]",
        "must be one of false, true",
    ),
    Bad(
        "annotation value not a string",
        svc(
            "{ports: [{port: 80}]}",
            meta="{name: web, annotations: {seaway.io/accept-proxy-protocol: true}}",
        ),
        SVC,
        "metadata.annotations[seaway.io/accept-proxy-protocol]",
        "expected a string, got boolean",
    ),
    Bad(
        "bad metallb address",
        svc(
            "{ports: [{port: 80}]}",
            meta="{name: web, annotations: {metallb.io/loadBalancerIPs: '192.0.2.1, nope'}}",
        ),
        SVC,
        "metadata.annotations[metallb.io/loadBalancerIPs]",
        "'nope' is not a valid IP address",
    ),
    Bad(
        "slice without service-name label",
        eps(ADDR, labels="{app: web}"),
        EPS,
        "metadata.labels[kubernetes.io/service-name]",
        "is required",
    ),
    Bad("slice without addressType", eps(""), EPS, "addressType", "is required"),
    Bad(
        "slice address of the wrong family",
        eps(ADDR + "endpoints: [{addresses: ['2001:db8::1']}]"),
        EPS,
        "endpoints[0].addresses[0]",
        "'2001:db8::1' is not a valid IPv4 address",
    ),
    Bad(
        "slice endpoint without addresses",
        eps(ADDR + "endpoints: [{addresses: []}]"),
        EPS,
        "endpoints[0].addresses",
        "must not be empty",
    ),
    Bad(
        "condition not a boolean",
        eps(ADDR + "endpoints: [{addresses: [192.0.2.1], conditions: {ready: 'yes'}}]"),
        EPS,
        "endpoints[0].conditions.ready",
        "expected a boolean, got string 'yes'",
    ),
    Bad(
        "slice port without a number",
        eps(ADDR + "ports: [{name: http}]"),
        EPS,
        "ports[0].port",
        "is required",
    ),
    Bad(
        "node taint without effect",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {taints: [{key: k}]}\n",
        "Node n1",
        "spec.taints[0].effect",
        "is required",
    ),
    Bad(
        "pool CIDR prefix too long",
        pool("{addresses: [192.0.2.0/24, 10.0.0.0/33]}"),
        POOL,
        "spec.addresses[1]",
        "'10.0.0.0/33' is not a valid CIDR",
    ),
    Bad(
        "pool range reversed",
        pool("{addresses: [192.0.2.9-192.0.2.1]}"),
        POOL,
        "spec.addresses[0]",
        "the first address is after the last",
    ),
    Bad(
        "pool range mixing families",
        pool("{addresses: ['192.0.2.1-2001:db8::1']}"),
        POOL,
        "spec.addresses[0]",
        "mixes IPv4 and IPv6",
    ),
    Bad(
        "pool without addresses", pool("{autoAssign: false}"), POOL, "spec.addresses", "is required"
    ),
    Bad(
        "pool autoAssign a string",
        pool("{addresses: [192.0.2.0/24], autoAssign: 'no'}"),
        POOL,
        "spec.autoAssign",
        "expected a boolean, got string 'no'",
    ),
    Bad(
        "unknown SeawayConfig field",
        config("{algoritm: maglev}"),
        CFG,
        "spec.algoritm",
        "unknown field",
    ),
    Bad(
        "unknown keepalive field",
        config("{keepalive: {idle: 5}}"),
        CFG,
        "spec.keepalive.idle",
        "unknown field",
    ),
    Bad(
        "keepalive count above the Linux cap",
        config("{keepalive: {count: 128}}"),
        CFG,
        "spec.keepalive.count",
        "between 1 and 127",
    ),
    Bad(
        "maglev table size not prime",
        config("{maglevTableSize: 65536}"),
        CFG,
        "spec.maglevTableSize",
        "must be a prime number, got 65536",
    ),
    Bad(
        "loopback pool outside 127/8",
        config("{loopbackPool: 10.0.0.0/16}"),
        CFG,
        "spec.loopbackPool",
        "not inside 127.0.0.0/8",
    ),
    Bad(
        "admin address without port",
        config("{adminAddress: localhost}"),
        CFG,
        "spec.adminAddress",
        "is not host:port",
    ),
    Bad(
        "admin IPv6 without brackets",
        config("{adminAddress: '::1:9980'}"),
        CFG,
        "spec.adminAddress",
        "is not host:port",
    ),
    Bad(
        "connect timeout zero",
        config("{connectTimeoutSeconds: 0}"),
        CFG,
        "spec.connectTimeoutSeconds",
        "must be a finite number > 0",
    ),
    Bad(
        "connect timeout a string",
        config("{connectTimeoutSeconds: '2s'}"),
        CFG,
        "spec.connectTimeoutSeconds",
        "expected a number, got string '2s'",
    ),
    Bad(
        "unknown global algorithm",
        config("{algorithm: fastest}"),
        CFG,
        "spec.algorithm",
        "must be one of dh, lc, least-request, maglev, nq, peak-ewma, random, ring-hash, "
        "round-robin, sed, sh, wlc",
    ),
    Bad(
        "connect attempts zero",
        config("{connectAttempts: 0}"),
        CFG,
        "spec.connectAttempts",
        "must be >= 1, got 0",
    ),
    Bad(
        "list item",
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: ok}, spec: {ports: [{port: 80}]}}\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: web}, spec: {ports: [{port: x}]}}\n",
        SVC,
        "spec.ports[0].port",
        "expected an integer",
        source=f"{SOURCE}#1 items[1]",
    ),
    Bad(
        "second document",
        "---\n"
        + svc("{ports: [{port: 80}]}")
        + "---\n"
        + svc("{ports: [{port: -1}]}", meta="{name: api}"),
        "Service default/api",
        "spec.ports[0].port",
        "between",
        source=f"{SOURCE}#2",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_manifest_names_file_object_and_field(case: Bad) -> None:
    result = parse_text(case.text, SOURCE)
    assert len(result.errors) == 1, result.errors
    error = result.errors[0]
    assert (error.source, error.obj, error.field) == (case.source, case.obj, case.field)
    assert case.message in error.message
    # The object in error is left out.
    assert all(describe(kind_of(o), o.meta) != case.obj for o in result.objects)


def test_invalid_object_is_left_out_and_valid_ones_kept() -> None:
    text = (
        "---\n"
        + svc("{ports: [{port: 80}]}")
        + "---\n"
        + svc("{ports: [{port: x}]}", meta="{name: api}")
    )
    result = parse_text(text, SOURCE)
    assert [o.meta.name for o in result.objects] == ["web"]
    assert [e.source for e in result.errors] == [f"{SOURCE}#2"]


def test_every_error_is_reported_not_just_the_first() -> None:
    text = (
        svc("{type: Nope, ports: [{port: '80', protocol: tcp}, {name: b, port: 70000}]}")
        + "---\n"
        + pool("{addresses: [bad]}")
    )
    errors = parse_errors(text)
    assert [(e.source, e.field) for e in errors] == [
        ("m.yaml#1", "spec.type"),
        ("m.yaml#1", "spec.ports[0].protocol"),
        ("m.yaml#1", "spec.ports[0].port"),
        ("m.yaml#1", "spec.ports[1].port"),
        ("m.yaml#2", "spec.addresses[0]"),
    ]
    assert str(errors[0]) == (
        "m.yaml#1: Service default/web spec.type: must be one of ClusterIP, NodePort, "
        "LoadBalancer, ExternalName, got 'Nope'"
    )


def test_bad_yaml_reports_line_and_column() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: [a\n"
    errors = parse_errors(text, "dir/web.yaml")
    assert len(errors) == 1
    assert errors[0].source == "dir/web.yaml"
    assert errors[0].message.startswith("invalid YAML at line 6, column 1:")


def test_bad_yaml_in_a_later_document_keeps_earlier_errors() -> None:
    text = svc("{ports: [{port: 0}]}") + "---\nkey: [unclosed\n"
    errors = parse_errors(text)
    assert [e.source for e in errors] == ["m.yaml#1", "m.yaml"]
    assert errors[1].message.startswith("invalid YAML at line 7, column 1:")
    assert "expected ',' or ']'" in errors[1].message


def test_duplicate_yaml_key_is_an_error() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: []\n  ports: []\n"
    errors = parse_errors(text)
    assert len(errors) == 1
    assert "line 6, column 3: found duplicate key 'ports'" in errors[0].message


def test_yaml_merge_keys_still_work() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
        "spec:\n  ports:\n  - <<: {port: 80, name: a}\n    port: 81\n"
    )
    result = parse_text(text, SOURCE)
    assert result.errors == ()
    service = result.objects[0]
    assert isinstance(service, Service)
    assert service.ports == (ServicePort(port=81, name="a"),)


def test_json_document_and_json_errors() -> None:
    good = '{\n\t"apiVersion": "v1", "kind": "Node",\n\t"metadata": {"name": "n1"}\n}\n'
    result = parse_text(good, "n.json", syntax="json")
    assert result.errors == ()
    assert result.objects == (Node(meta=ObjectMeta(name="n1", namespace="", source="n.json#1")),)
    bad = parse_text('{"apiVersion": "v1",\n "kind": }', "n.json", syntax="json").errors
    assert [(e.source, e.message) for e in bad] == [
        ("n.json", "invalid JSON at line 2, column 10: Expecting value")
    ]
    dup = parse_text('{"kind": "Node", "kind": "Node"}', "n.json", syntax="json").errors
    assert "duplicate key 'kind'" in dup[0].message


def test_empty_documents_are_ignored_but_counted() -> None:
    text = "---\n---\n# only a comment\n---\n" + svc("{ports: [{port: 0}]}")
    errors = parse_errors(text)
    assert [e.source for e in errors] == ["m.yaml#3"]


def test_list_kind_expands_items() -> None:
    document = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}},
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "d"}},
        ],
    }
    result = parse_document(document, "l.yaml#1")
    assert [(o.meta.name, o.meta.source) for o in result.objects] == [
        ("n1", "l.yaml#1 items[0]"),
        ("n2", "l.yaml#1 items[1]"),
    ]
    assert result.notes == (
        "l.yaml#1 items[2]: skipped StatefulSet default/d (apps/v1): not read by seaway",
    )


def test_unknown_kinds_and_foreign_groups_are_noted_not_errors() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: site, namespace: shop}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: reader}
        ---
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {name: hello}
        """
    )
    result = parse_text(text, SOURCE)
    assert result.errors == () and result.objects == ()
    assert result.notes == (
        "m.yaml#1: skipped NetworkPolicy shop/site (networking.k8s.io/v1): not read by seaway",
        "m.yaml#2: skipped ClusterRole default/reader (rbac.authorization.k8s.io/v1): "
        "not read by seaway",
        "m.yaml#3: skipped Service default/hello (serving.knative.dev/v1): not read by seaway",
    )


def test_unknown_seaway_annotation_is_a_note() -> None:
    text = svc("{ports: [{port: 80}]}", meta="{name: web, annotations: {seaway.io/algoritm: x}}")
    result = parse_text(text, SOURCE)
    assert result.errors == ()
    assert result.notes == (
        "m.yaml#1: Service default/web: unknown annotation seaway.io/algoritm ignored",
    )


GOOD = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  annotations:
    seaway.io/algorithm: round-robin
    seaway.io/hash-on: source-ip
    seaway.io/proxy-protocol: v2
    seaway.io/accept-proxy-protocol: "true"
    metallb.io/loadBalancerIPs: 192.0.2.10, 2001:db8::10
spec:
  type: LoadBalancer
  selector: {app: web}
  clusterIP: 10.96.0.10
  externalIPs: [198.51.100.7, "2001:DB8::7"]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  healthCheckNodePort: 32000
  loadBalancerIP: 192.0.2.10
  loadBalancerClass: seaway.io/lb
  loadBalancerSourceRanges: [10.0.0.1/8, "2001:db8::/32"]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  trafficDistribution: PreferClose
  ipFamilies: [IPv4]  # fields seaway does not use are ignored
  ports:
  - {name: http, port: 80, targetPort: web, nodePort: 30080, appProtocol: http}
  - {name: dns, protocol: UDP, port: 53, targetPort: 5353}
status: {loadBalancer: {}}
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec:
  ports: [{port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080, appProtocol: http}
- {name: dns, protocol: UDP, port: 5353}
endpoints:
- addresses: [192.0.2.21]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-a
  zone: zone-1
  hints: {forZones: [{name: zone-1}, {name: zone-2}]}
  targetRef: {kind: Pod, namespace: shop, name: web-1}
- addresses: [192.0.2.22]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: web-2}
- addresses: [192.0.2.23]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-v6
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv6
endpoints: [{addresses: ["2001:db8:0::21"], conditions: {ready: null}}]
ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
  namespace: ignored-for-cluster-scoped
  labels: {topology.kubernetes.io/zone: zone-1}
  deletionTimestamp: 2024-05-01T12:00:00Z
spec:
  unschedulable: true
  taints: [{key: node.kubernetes.io/unschedulable, effect: NoSchedule},
           {key: dedicated, value: lb, effect: NoExecute}]
status:
  addresses: [{type: InternalIP, address: 192.0.2.1}, {type: Hostname, address: node-a}]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: public, namespace: metallb-system}
spec:
  addresses: [192.0.2.0/28, 192.0.2.100 - 192.0.2.120, "2001:db8::/120"]
  autoAssign: false
---
apiVersion: seaway.io/v1alpha1
kind: SeawayConfig
metadata: {name: seaway}
spec:
  loadBalancerClass: example.com/lb
  loopbackPool: 127.77.0.0/16
  adminAddress: "[::1]:9999"
  algorithm: random
  maglevTableSize: 251
  nodeName: node-a
  connectTimeoutSeconds: 0.5
  connectAttempts: 2
  udpIdleTimeoutSeconds: 5
  udpFlowTableSize: 1024
  keepalive: {enabled: false, idleSeconds: 30, intervalSeconds: 5, count: 3}
  stateFile: /var/lib/seaway/state.json
"""


def test_full_example_round_trip() -> None:
    result = parse_text(GOOD, "good.yaml")
    assert result.errors == ()
    assert result.notes == ()
    web, plain, slice_v4, slice_v6, node, address_pool, settings = result.objects
    assert web == Service(
        meta=ObjectMeta(
            name="web",
            namespace="shop",
            labels={"app": "web"},
            annotations={
                "seaway.io/algorithm": "round-robin",
                "seaway.io/hash-on": "source-ip",
                "seaway.io/proxy-protocol": "v2",
                "seaway.io/accept-proxy-protocol": "true",
                "metallb.io/loadBalancerIPs": "192.0.2.10, 2001:db8::10",
            },
            source="good.yaml#1",
        ),
        type="LoadBalancer",
        ports=(
            ServicePort(80, "TCP", "http", "web", 30080, "http"),
            ServicePort(53, "UDP", "dns", 5353, None, None),
        ),
        selector={"app": "web"},
        cluster_ip="10.96.0.10",
        external_ips=("198.51.100.7", "2001:db8::7"),
        external_traffic_policy="Local",
        internal_traffic_policy="Local",
        health_check_node_port=32000,
        load_balancer_ip="192.0.2.10",
        load_balancer_class="seaway.io/lb",
        load_balancer_source_ranges=("10.0.0.0/8", "2001:db8::/32"),
        session_affinity="ClientIP",
        session_affinity_timeout=600,
        traffic_distribution="PreferClose",
    )
    assert plain == Service(
        meta=ObjectMeta(name="plain", source="good.yaml#2"), ports=(ServicePort(8080),)
    )
    assert plain.ports[0].effective_target_port == 8080
    assert slice_v4 == EndpointSlice(
        meta=ObjectMeta(
            name="web-abc12",
            namespace="shop",
            labels={"kubernetes.io/service-name": "web"},
            source="good.yaml#3",
        ),
        service_name="web",
        address_type="IPv4",
        endpoints=(
            Endpoint(
                ("192.0.2.21",),
                EndpointConditions(ready=False, serving=True, terminating=True),
                node_name="node-a",
                zone="zone-1",
                hints_for_zones=("zone-1", "zone-2"),
                target_ref="Pod/shop/web-1",
            ),
            # Absent conditions stay None: core.endpoints decides what absence means.
            Endpoint(("192.0.2.22",), EndpointConditions(ready=True), target_ref="Pod/shop/web-2"),
            Endpoint(("192.0.2.23",), EndpointConditions(None, None, None)),
        ),
        ports=(EndpointPort(8080, "http", "TCP", "http"), EndpointPort(5353, "dns", "UDP")),
    )
    assert slice_v4.service_key == "shop/web"
    assert isinstance(slice_v6, EndpointSlice)
    assert slice_v6.address_type == "IPv6"
    assert slice_v6.endpoints == (Endpoint(("2001:db8::21",), EndpointConditions()),)
    assert node == Node(
        meta=ObjectMeta(
            name="node-a",
            namespace="",
            labels={"topology.kubernetes.io/zone": "zone-1"},
            deletion_timestamp="2024-05-01T12:00:00Z",
            source="good.yaml#5",
        ),
        addresses=(("InternalIP", "192.0.2.1"), ("Hostname", "node-a")),
        taints=(
            Taint("node.kubernetes.io/unschedulable", "", "NoSchedule"),
            Taint("dedicated", "lb", "NoExecute"),
        ),
        unschedulable=True,
    )
    assert isinstance(node, Node) and node.zone == "zone-1"
    assert address_pool == IPAddressPool(
        meta=ObjectMeta(name="public", namespace="metallb-system", source="good.yaml#6"),
        addresses=("192.0.2.0/28", "192.0.2.100-192.0.2.120", "2001:db8::/120"),
        auto_assign=False,
    )
    assert settings == SeawaySettings(
        meta=ObjectMeta(name="seaway", namespace="", source="good.yaml#7"),
        load_balancer_class="example.com/lb",
        loopback_pool="127.77.0.0/16",
        admin_address="[::1]:9999",
        algorithm="random",
        maglev_table_size=251,
        node_name="node-a",
        connect_timeout_seconds=0.5,
        connect_attempts=2,
        udp_idle_timeout_seconds=5.0,
        udp_flow_table_size=1024,
        keepalive=KeepaliveSettings(enabled=False, idle_seconds=30, interval_seconds=5, count=3),
        state_file="/var/lib/seaway/state.json",
    )


def test_empty_seaway_config_has_every_default() -> None:
    result = parse_text(
        "apiVersion: seaway.io/v1alpha1\nkind: SeawayConfig\nmetadata: {name: s}\n", SOURCE
    )
    assert result.errors == ()
    assert result.objects == (SeawaySettings(meta=ObjectMeta("s", "", source="m.yaml#1")),)


def test_quoted_deletion_timestamp_is_kept_as_written() -> None:
    meta = '{name: n, deletionTimestamp: "2024-05-01T12:00:00Z"}'
    text = f"apiVersion: v1\nkind: Node\nmetadata: {meta}\n"
    (node,) = parse_text(text, SOURCE).objects
    assert node.meta.deletion_timestamp == "2024-05-01T12:00:00Z"


@pytest.mark.parametrize(
    ("n", "prime"),
    [
        (1, False),
        (2, True),
        (3, True),
        (4, False),
        (251, True),
        (65536, False),
        (65537, True),
        (2**31 - 1, True),
        (3215031751, False),
        (1_000_000_007 * 998_244_353, False),
    ],
)
def test_is_prime(n: int, prime: bool) -> None:
    assert is_prime(n) is prime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9980", ("127.0.0.1", 9980)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:0", ("localhost", 0)),
        ("::1:80", None),
        ("[10.0.0.1]:80", None),
        ("host:", None),
        (":80", None),
        ("host:65536", None),
        ("host:8o", None),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int] | None) -> None:
    assert split_host_port(text) == expected
