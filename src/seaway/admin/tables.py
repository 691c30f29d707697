"""``seaway status``: the admin state as plain-text tables, the way kubectl prints them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seaway.core.config import join_host_port

# kubectl separates columns by three spaces and pads each to its widest cell.
_GAP = "   "
_NONE = "-"


def render_status(state: Mapping[str, Any]) -> str:
    """The whole status: services, the backends of each port, errors, notes."""
    out = [_summary(state), ""]
    services: list[Mapping[str, Any]] = list(state.get("services") or [])
    out.append("SERVICES")
    if services:
        out += _table(
            ("NAMESPACE", "NAME", "TYPE", "EXTERNAL-IP", "PORT(S)", "BACKENDS", "MESSAGE"),
            [_service_row(service) for service in services],
        )
    else:
        out.append("No services.")
    listener_errors: Mapping[str, str] = state.get("listenerErrors") or {}
    for service in services:
        for port in service.get("ports") or []:
            out += ["", *_port_section(port, listener_errors)]
    if listener_errors:
        out += ["", "LISTENER ERRORS"]
        out += _table(("LISTENER", "ERROR"), sorted(listener_errors.items()))
    last_error = state.get("lastError")
    if last_error:
        out += ["", *_last_error(last_error, state.get("generation"))]
    notes: Sequence[str] = state.get("notes") or []
    if notes:
        out += ["", "NOTES", *(f"- {_cell(note)}" for note in notes)]
    return "\n".join(out)


def _summary(state: Mapping[str, Any]) -> str:
    parts = [f"seaway {state.get('version', '?')}"]
    if state.get("generation") is not None:
        parts.append(f"configuration {state['generation']}")
    if state.get("appliedAt"):
        parts.append(f"applied {state['appliedAt']}")
    return ", ".join(parts)


def _service_row(service: Mapping[str, Any]) -> tuple[str, ...]:
    ports: list[Mapping[str, Any]] = list(service.get("ports") or [])
    ingress = (service.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    ips = [str(i.get("ip") or i.get("hostname") or "") for i in ingress]
    ips = [ip for ip in ips if ip]
    if ips:
        external = ",".join(ips)
    else:  # kubectl's words: an address is coming, or none is wanted
        external = "<pending>" if service.get("type") == "LoadBalancer" else "<none>"
    port_text = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports)
    message = service.get("message") or "; ".join(
        dict.fromkeys(str(p["emptyReason"]) for p in ports if p.get("emptyReason"))
    )
    return (
        str(service.get("namespace", "")),
        str(service.get("name", "")),
        str(service.get("type", "")),
        external,
        port_text or "<none>",
        _backend_counts(ports),
        _cell(message),
    )


def _backend_counts(ports: Sequence[Mapping[str, Any]]) -> str:
    """``usable/total`` endpoints; one per port when the ports differ."""
    counts = []
    for port in ports:
        endpoints = port.get("endpoints") or []
        usable = sum(1 for e in endpoints if e.get("usable"))
        counts.append(f"{usable}/{len(endpoints)}")
    if not counts:
        return _NONE
    return counts[0] if len(set(counts)) == 1 else ",".join(counts)


def _port_section(port: Mapping[str, Any], listener_errors: Mapping[str, str]) -> list[str]:
    details = [f"port {port['name']}"] if port.get("name") else []
    details.append(str(port.get("algorithm") or "?"))
    listeners = list(port.get("listeners") or [])
    details.append(f"on {', '.join(listeners)}" if listeners else "no listener")
    lines = [f"BACKENDS {port.get('key', '?')} ({', '.join(details)})"]
    for listener in listeners:
        if listener in listener_errors:
            lines.append(f"! listener {listener} is not open: {_cell(listener_errors[listener])}")
    endpoints: list[Mapping[str, Any]] = list(port.get("endpoints") or [])
    if not endpoints:
        why = port.get("emptyReason") or "no endpoints"
        return [*lines, f"No backends: {_cell(why)}."]
    rows = [
        (
            join_host_port(str(e.get("address", "")), int(e.get("port") or 0)),
            str(e.get("name") or _NONE),
            str(e.get("node") or _NONE),
            _bool(e.get("ready")),
            _bool(e.get("serving")),
            _bool(e.get("terminating")),
            "yes" if e.get("usable") else "no",
            _cell(str(e.get("reason") or _NONE)),
            str(e.get("active", 0)),
            str(e.get("total", 0)),
        )
        for e in endpoints
    ]
    header = (
        "ADDRESS",
        "NAME",
        "NODE",
        "READY",
        "SERVING",
        "TERMINATING",
        "USED",
        "REASON",
        "ACTIVE",
        "TOTAL",
    )
    return lines + _table(header, rows)


def _last_error(last_error: Mapping[str, Any], generation: Any) -> list[str]:
    serving = f"; still serving configuration {generation}" if generation is not None else ""
    lines = [f"LAST ERROR (at {last_error.get('at', '?')}: the change was refused{serving})"]
    errors: list[Mapping[str, Any]] = list(last_error.get("errors") or [])
    rows = [
        (
            _cell(str(e.get("source") or _NONE)),
            _cell(str(e.get("object") or _NONE)),
            _cell(str(e.get("field") or _NONE)),
            _cell(str(e.get("message") or "")),
        )
        for e in errors
    ]
    return lines + _table(("SOURCE", "OBJECT", "FIELD", "MESSAGE"), rows)


def _bool(value: Any) -> str:
    if value is None:
        return _NONE
    return "true" if value else "false"


def _cell(text: str) -> str:
    """One line, so that a message cannot break the table's shape."""
    return " ".join(str(text).split())


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded the way kubectl pads them (for ``seaway top`` and ``explain``)."""
    return _table(header, rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns as wide as their widest cell; no trailing spaces."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    return [
        _GAP.join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
