from __future__ import annotations

from seaway.lab.kube_proxy_rules import TABLE, node_service_rules, render_node_rules
from seaway.lab.manifests import NodeView, PodEndpoint, cluster_state, render_manifests
from seaway.lab.spec import load_lab

SPEC = load_lab(None)
NODES = [NodeView(n.name, n.address, n.zone) for n in SPEC.nodes]


def _pod(name: str, node: str, address: str, *, serving: bool = True,
         terminating: bool = False) -> PodEndpoint:
    return PodEndpoint(name, "web", address, node, "zone-a", serving, terminating)


PODS = [
    _pod("web-1", "node-a", "100.64.1.2"),
    _pod("web-2", "node-b", "100.64.2.2"),
    _pod("web-3", "node-a", "100.64.1.3"),
]


def _rules(node: str, pods: list[PodEndpoint]) -> str:
    return render_node_rules(cluster_state(render_manifests(SPEC, pods, NODES)), node,
                             "100.64.0.0/16")


def test_manifests_carry_the_endpoint_conditions() -> None:
    pods = [*PODS[:2], _pod("web-3", "node-a", "100.64.1.3", terminating=True)]
    state = cluster_state(render_manifests(SPEC, pods, NODES))
    endpoints = state.slices_for("default/web")[0].endpoints
    conditions = {e.target_ref: e.conditions for e in endpoints}
    terminating = conditions["Pod/default/web-3"]
    assert (terminating.ready, terminating.serving, terminating.terminating) == (
        False, True, True)
    assert {e.node_name for e in endpoints} == {"node-a", "node-b"}
    assert set(state.nodes) == {"node-a", "node-b", "node-c"}


def test_cluster_policy_masquerades_and_picks_among_all_pods() -> None:
    script = _rules("node-c", PODS)
    assert script.splitlines()[:2] == [f"table ip {TABLE}", f"delete table ip {TABLE}"]
    assert "fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 30080 goto ext-web-80" in script
    assert "ip daddr 198.18.0.99 tcp dport 80 goto ext-web-80" in script
    ext = script.split("chain ext-web-80 {")[1].split("}")[0]
    assert "jump mark-for-masquerade" in ext
    assert "numgen random mod 3" in script.split("chain svc-web-80 {")[1].split("}")[0]
    assert "dnat to 100.64.2.2:8000" in script


def test_local_policy_keeps_the_client_and_drops_without_local_pods() -> None:
    on_a = _rules("node-a", PODS)
    ext = on_a.split("chain ext-web-local-80 {")[1].split("  }")[0]
    assert "goto local-web-local-80" in ext
    assert "mark-for-masquerade" not in ext.split("goto local")[0].split("fib saddr")[0]
    local = on_a.split("chain local-web-local-80 {")[1].split("}")[0]
    assert "ep-100-64-1-2-8000" in local and "ep-100-64-2-2-8000" not in local
    on_c = _rules("node-c", PODS)
    no_endpoints = on_c.split("chain no-endpoints {")[1].split("}")[0]
    assert "tcp dport 30081 drop" in no_endpoints
    assert "tcp dport 30080" not in no_endpoints


def test_no_endpoints_rejects() -> None:
    script = _rules("node-a", [])
    no_endpoints = script.split("chain no-endpoints {")[1].split("}")[0]
    assert "ip daddr 10.96.0.10 tcp dport 80 reject" in no_endpoints
    assert "tcp dport 30080 reject" in no_endpoints
    assert "dnat" not in script


def test_terminating_pods_are_used_only_when_nothing_is_ready() -> None:
    pods = [_pod("web-1", "node-a", "100.64.1.2", terminating=True), PODS[1]]
    (web, *_) = [r for r in node_service_rules(
        cluster_state(render_manifests(SPEC, pods, NODES)), "node-a") if r.name == "web-80"]
    assert [b.address for b in web.cluster] == ["100.64.2.2"]
    only_terminating = [_pod("web-1", "node-a", "100.64.1.2", terminating=True)]
    (web, *_) = [r for r in node_service_rules(
        cluster_state(render_manifests(SPEC, only_terminating, NODES)), "node-a")
        if r.name == "web-80"]
    assert [b.address for b in web.cluster] == ["100.64.1.2"]  # KEP-1669 fallback
