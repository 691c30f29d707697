"""``seaway top``: traffic per backend, from the change between two admin states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seaway.admin.tables import table
from seaway.core.config import join_host_port

# ANSI "cursor home" and "erase display" (ECMA-48 CUP and ED): redraw in place.
CLEAR_SCREEN = "\x1b[H\x1b[2J"
_NONE = "-"


@dataclass(frozen=True, slots=True)
class BackendSample:
    """One backend's counters in one admin state."""

    service: str
    port: str
    backend: str
    name: str
    usable: bool
    active: int
    total: int
    failed: int
    bytes_in: int
    bytes_out: int
    requests: int | None


def samples(state: Mapping[str, Any]) -> dict[tuple[str, str], BackendSample]:
    """Every backend of every Service port, keyed by (backend set key, backend)."""
    out: dict[tuple[str, str], BackendSample] = {}
    for svc in state.get("services") or []:
        service = f"{svc.get('namespace', '')}/{svc.get('name', '')}"
        for port in svc.get("ports") or []:
            port_text = f"{port.get('port', '?')}/{port.get('protocol', 'TCP')}"
            for ep in port.get("endpoints") or []:
                backend = join_host_port(str(ep.get("address", "")), int(ep.get("port") or 0))
                requests = ep.get("requests")
                out[(str(port.get("key", port_text)), backend)] = BackendSample(
                    service=service,
                    port=port_text,
                    backend=backend,
                    name=str(ep.get("name") or _NONE),
                    usable=bool(ep.get("usable")),
                    active=int(ep.get("active") or 0),
                    total=int(ep.get("total") or 0),
                    failed=int(ep.get("failed") or 0),
                    bytes_in=int(ep.get("bytesToBackend") or 0),
                    bytes_out=int(ep.get("bytesFromBackend") or 0),
                    requests=int(requests) if requests is not None else None,
                )
    return out


def _rate(now: int, before: int | None, seconds: float) -> float:
    if before is None or seconds <= 0:
        return 0.0
    return max(0, now - before) / seconds


def _bytes_rate(value: float) -> str:
    for unit in ("B/s", "KiB/s", "MiB/s", "GiB/s"):
        if value < 1024 or unit == "GiB/s":
            return f"{value:.0f} {unit}" if unit == "B/s" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB/s"  # unreachable; keeps type checkers content


def render_top(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any], seconds: float
) -> str:
    """One frame: a line per backend with its rates over ``seconds`` between the states.

    Without ``previous`` the rates are 0 (there is nothing to compare with yet).
    """
    before = samples(previous) if previous is not None else {}
    now = samples(current)
    with_requests = any(s.requests is not None for s in now.values())
    header = ["SERVICE", "PORT", "BACKEND", "NAME", "USED", "ACTIVE", "CONN/S", "SHARE"]
    if with_requests:
        header.append("REQ/S")
    header += ["IN", "OUT", "TOTAL", "FAILED"]
    # Shares are within a Service port: how the balancer split that port's new traffic.
    per_port: dict[str, float] = {}
    rates: dict[tuple[str, str], float] = {}
    for key, s in now.items():
        old = before.get(key)
        rate = _rate(s.total, old.total if old else None, seconds)
        rates[key] = rate
        per_port[key[0]] = per_port.get(key[0], 0.0) + rate
    rows: list[list[str]] = []
    for key in sorted(now, key=lambda k: (now[k].service, now[k].port, now[k].backend)):
        s = now[key]
        old = before.get(key)
        port_rate = per_port[key[0]]
        share = f"{100 * rates[key] / port_rate:.0f}%" if port_rate else _NONE
        row = [
            s.service,
            s.port,
            s.backend,
            s.name,
            "yes" if s.usable else "no",
            str(s.active),
            f"{rates[key]:.1f}",
            share,
        ]
        if with_requests:
            before_requests = old.requests if old else None
            row.append(
                f"{_rate(s.requests, before_requests, seconds):.1f}"
                if s.requests is not None
                else _NONE
            )
        row += [
            _bytes_rate(_rate(s.bytes_in, old.bytes_in if old else None, seconds)),
            _bytes_rate(_rate(s.bytes_out, old.bytes_out if old else None, seconds)),
            str(s.total),
            str(s.failed),
        ]
        rows.append(row)
    title = f"seaway {current.get('version', '?')}, configuration {current.get('generation', '?')}"
    title += f"; rates over the last {seconds:.1f} s" if previous is not None else ""
    lines = [title, ""]
    if current.get("lastError"):
        at = current["lastError"].get("at", "?")
        lines += [f"! configuration change refused at {at}: see `seaway status`", ""]
    if rows:
        lines += table(header, rows)
    else:
        lines.append("No backends.")
    return "\n".join(lines)
