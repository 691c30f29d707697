"""The admin API server: ``/api/v1/state``, ``/healthz``, ``/readyz``; read-only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from seaway.http1 import HTTPServer, Request, Response

STATE_PATH = "/api/v1/state"
_READ_METHODS = ("GET", "HEAD")


class AdminAddressError(OSError):
    """The admin API cannot listen on the address it was given."""


class AdminServer:
    """Serves seaway's state as JSON, plus liveness and readiness (owns its listener).

    ``state`` is called once per ``GET /api/v1/state`` and must return something
    ``json`` can encode; ``ready`` decides ``/readyz``. Only GET and HEAD are allowed.
    """

    def __init__(
        self,
        address: str,
        state: Callable[[], dict[str, Any]],
        *,
        ready: Callable[[], bool],
    ) -> None:
        self.address = address
        self._state = state
        self._ready = ready
        self._server = HTTPServer(self._handle)
        self._started = False

    async def start(self) -> None:
        """Listen; raises AdminAddressError naming the address when that fails."""
        try:
            await self._server.start(self.address)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AdminAddressError(
                f"cannot listen on {self.address} for seaway's admin API: {reason}"
            ) from exc
        self._started = True

    @property
    def bound_address(self) -> str:
        """``host:port`` actually listened on (the real port when 0 was given)."""
        return self._server.bound_address

    async def close(self) -> None:
        """Stop listening and close open connections (after their current response)."""
        if self._started:
            self._started = False
            await self._server.close()

    async def _handle(self, request: Request) -> Response:
        if request.method not in _READ_METHODS:
            return Response.text(
                405, "the admin API is read-only: use GET\n", (("Allow", "GET, HEAD"),)
            )
        if request.path == STATE_PATH:
            body = json.dumps(self._state(), default=str, separators=(",", ":")).encode()
            headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
            return Response(200, headers, body)
        if request.path == "/healthz":
            return Response.text(200, "ok")
        if request.path == "/readyz":
            return Response.text(200, "ok") if self._ready() else Response.text(503, "not ready")
        return Response.text(404, f"no such endpoint: {request.path}\n")
