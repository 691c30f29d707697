"""``seaway explain SERVICE``: which endpoints get traffic, and why not the others.

Read from the admin state: each endpoint's verdict (``usable``/``reason``, decided by
the core exactly as kube-proxy categorises endpoints, plus health checks and outlier
detection), the listeners, the balancing algorithm, session affinity and source
ranges. Each reason comes with what it means and what to look at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seaway.admin.tables import table
from seaway.core.config import join_host_port

# What each verdict means for a person, by the start of the reason text (the reasons
# are seaway.core.endpoints.REASON_* and the health verdicts "unhealthy"/"ejected").
_HINTS: tuple[tuple[str, str], ...] = (
    (
        "terminating and not serving",
        "the pod is shutting down and no longer serving; it gets no new connections",
    ),
    (
        "terminating",
        "the pod is shutting down; terminating endpoints that still serve are used only "
        "when no ready endpoint is left (KEP-1669)",
    ),
    (
        "not ready",
        "Kubernetes says the pod is not ready (its readiness probe fails or it is starting): "
        "look at `kubectl describe pod`",
    ),
    (
        "other node under traffic policy Local",
        "externalTrafficPolicy: Local sends traffic only to endpoints on this node "
        "(SeawayConfig spec.nodeName), so that the client address is kept",
    ),
    (
        "hinted for another zone",
        "topology-aware routing: the EndpointSlice hints give this endpoint to another zone",
    ),
    (
        "unhealthy",
        "seaway's active health check fails for it; it returns after enough passing checks",
    ),
    (
        "ejected",
        "outlier detection took it out after consecutive connect failures; it returns when "
        "the ejection time is over",
    ),
    ("duplicate", "the same address and port appears in more than one EndpointSlice"),
)


class UnknownService(LookupError):
    """The state has no such Service; the message lists the ones it has."""


def hint(reason: str) -> str:
    """What ``reason`` means, or "" for reasons without an explanation."""
    if reason.endswith("(used: panic)"):
        return (
            "too few backends are healthy (below healthyPanicThreshold), so every backend "
            "is used, this one included"
        )
    for prefix, text in _HINTS:
        if reason.startswith(prefix):
            return text
    return ""


def find_service(state: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The Service ``namespace/name`` (``name`` alone: namespace default) in ``state``."""
    namespace, sep, short = name.partition("/")
    if not sep:
        namespace, short = "default", name
    services: Sequence[Mapping[str, Any]] = state.get("services") or []
    for svc in services:
        if svc.get("namespace") == namespace and svc.get("name") == short:
            return svc
    known = ", ".join(f"{s.get('namespace')}/{s.get('name')}" for s in services) or "none"
    raise UnknownService(f"no Service {namespace}/{short} in seaway's state (services: {known})")


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def render_explain(state: Mapping[str, Any], name: str) -> str:
    """The explanation for Service ``name`` (raises UnknownService)."""
    svc = find_service(state, name)
    listeners = {str(lst.get("key")): lst for lst in state.get("listeners") or []}
    listener_errors: Mapping[str, str] = state.get("listenerErrors") or {}
    ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    ips = [str(i.get("ip") or i.get("hostname") or "") for i in ingress]
    ips = [ip for ip in ips if ip]
    lines = [
        f"Service {svc.get('namespace')}/{svc.get('name')} (type {svc.get('type', '?')})",
        f"  address: {', '.join(ips) if ips else 'none'}",
    ]
    if svc.get("message"):
        lines.append(f"  note: {svc['message']}")
    ports: Sequence[Mapping[str, Any]] = svc.get("ports") or []
    if not ports:
        lines.append("  no ports are served")
    for port in ports:
        lines += ["", *_port(port, listeners, listener_errors)]
    if state.get("lastError"):
        lines += [
            "",
            f"! a configuration change was refused at {state['lastError'].get('at', '?')}; "
            "this is the last good configuration (see `seaway status`)",
        ]
    return "\n".join(lines)


def _port(
    port: Mapping[str, Any],
    listeners: Mapping[str, Mapping[str, Any]],
    listener_errors: Mapping[str, str],
) -> list[str]:
    title = f"Port {port.get('port')}/{port.get('protocol', 'TCP')}"
    if port.get("name"):
        title += f" ({port['name']})"
    lines = [title]
    keys: Sequence[str] = port.get("listeners") or []
    if not keys:
        lines.append("  listeners: none (the Service has no address yet, or is not seaway's)")
    for key in keys:
        state = f"NOT OPEN: {listener_errors[key]}" if key in listener_errors else "open"
        lines.append(f"  listener {key}: {state}")
        spec = listeners.get(key) or {}
        ranges = spec.get("sourceRanges") or []
        if ranges:
            lines.append(f"    source ranges (loadBalancerSourceRanges): {', '.join(ranges)}")
        else:
            lines.append("    source ranges: any client")
        if spec.get("acceptProxyProtocol"):
            lines.append("    expects a PROXY protocol header from the peer in front")
    algorithm = str(port.get("algorithm") or "?")
    hash_on = port.get("hashOn")
    lines.append(
        f"  algorithm: {algorithm}"
        + (f" (hash on {hash_on})" if hash_on and algorithm in ("maglev", "ring-hash") else "")
    )
    affinity = port.get("sessionAffinity")
    if affinity:
        timeout = affinity.get("timeoutSeconds")
        lines.append(
            f"  session affinity: {affinity.get('type', 'ClientIP')}"
            + (f", {timeout:g} s" if isinstance(timeout, int | float) else "")
        )
    else:
        lines.append("  session affinity: none")
    if port.get("proxyProtocol"):
        lines.append(f"  PROXY protocol to backends: {port['proxyProtocol']}")
    check = port.get("healthCheck")
    if check:
        what = f"{check.get('protocol')}" + (f" {check['path']}" if check.get("path") else "")
        lines.append(
            f"  health check: {what} every {check.get('intervalSeconds')} s, "
            f"{check.get('unhealthyThreshold')} failures to remove, "
            f"{check.get('healthyThreshold')} passes to return"
        )
    if port.get("panic"):
        lines.append("  PANIC: too few healthy backends, every backend is used")
    endpoints: Sequence[Mapping[str, Any]] = port.get("endpoints") or []
    used = [e for e in endpoints if e.get("usable")]
    unused = [e for e in endpoints if not e.get("usable")]
    lines.append(f"  endpoints: {len(used)} of {len(endpoints)} get new connections")
    if not used:
        why = port.get("emptyReason") or "no endpoints"
        lines.append(f"  ! no endpoint gets traffic: {why}; connections are refused (RST)")
    if used:
        rows = [
            [
                join_host_port(str(e.get("address")), int(e.get("port") or 0)),
                str(e.get("name") or "-"),
                str(e.get("node") or "-"),
                str(e.get("zone") or "-"),
                _conditions(e),
                str(e.get("active", 0)),
                str(e.get("total", 0)),
            ]
            for e in used
        ]
        header = ["USED", "NAME", "NODE", "ZONE", "CONDITIONS", "ACTIVE", "TOTAL"]
        lines += ["    " + line for line in table(header, rows)]
    if unused:
        rows = [
            [
                join_host_port(str(e.get("address")), int(e.get("port") or 0)),
                str(e.get("name") or "-"),
                str(e.get("node") or "-"),
                str(e.get("reason") or "-"),
            ]
            for e in unused
        ]
        lines += ["    " + line for line in table(["NOT USED", "NAME", "NODE", "WHY"], rows)]
        seen: set[str] = set()
        for e in unused:
            reason = str(e.get("reason") or "")
            text = hint(reason)
            if text and reason not in seen:
                seen.add(reason)
                lines.append(f"    - {reason}: {text}")
    for e in used:
        reason = str(e.get("reason") or "")
        if reason and hint(reason):
            lines.append(f"    - {e.get('name') or e.get('address')}: {hint(reason)}")
    return lines


def _conditions(endpoint: Mapping[str, Any]) -> str:
    parts = [
        f"ready={_yes_no(endpoint.get('ready'))}",
        f"serving={_yes_no(endpoint.get('serving'))}",
    ]
    if endpoint.get("terminating"):
        parts.append("terminating")
    if endpoint.get("health"):
        parts.append(f"health={endpoint['health']}")
    return " ".join(parts)
