"""The L7 data plane: an HTTP/1.1 reverse proxy with Ingress and Gateway API routing."""

from __future__ import annotations

from seaway.dataplane.http.plane import HttpDataPlane

__all__ = ["HttpDataPlane"]
