"""The admin API server: ``/api/v1/state``, ``/metrics``, the status page at ``/``,
``/healthz``, ``/readyz``; read-only."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from seaway.admin.auth import CHALLENGE, OPEN_PATHS, BearerAuth, address_is_loopback
from seaway.admin.metrics import MetricsEndpoint
from seaway.http1 import HTTPServer, Request, Response

STATE_PATH = "/api/v1/state"
METRICS_PATH = "/metrics"
_READ_METHODS = ("GET", "HEAD")
# The status page loads nothing from anywhere: inline script and style, data: images,
# and requests to this server only. The policy makes a browser enforce that.
_PAGE_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
)


class AdminAddressError(OSError):
    """The admin API cannot listen on the address it was given."""


class AdminAuthRequired(AdminAddressError):
    """The admin address is not loopback and no token was given."""


@cache
def status_page() -> bytes:
    """The status page (one self-contained HTML file shipped in the package)."""
    return resources.files("seaway.admin").joinpath("static/status.html").read_bytes()


class AdminServer:
    """Serves seaway's state as JSON, plus liveness and readiness (owns its listener).

    ``state`` is called once per ``GET /api/v1/state`` and must return something
    ``json`` can encode; ``ready`` decides ``/readyz``; ``metrics`` serves ``/metrics``
    (404 without it). With ``token``, every path but ``/healthz``, ``/readyz`` and the
    page at ``/`` needs ``Authorization: Bearer <token>``; an address that is not
    loopback needs a token. Only GET and HEAD are allowed.
    """

    def __init__(
        self,
        address: str,
        state: Callable[[], dict[str, Any]],
        *,
        ready: Callable[[], bool],
        metrics: MetricsEndpoint | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        self._state = state
        self._ready = ready
        self._metrics = metrics
        self._auth = BearerAuth(token) if token is not None else None
        self._server = HTTPServer(self._handle)
        self._started = False

    @property
    def auth_required(self) -> bool:
        """Whether requests for data need a bearer token."""
        return self._auth is not None

    async def start(self) -> None:
        """Listen; raises AdminAddressError naming the address when that fails, and
        AdminAuthRequired (before binding) for a non-loopback address without a token."""
        # A malformed address is reported by the bind below, with its own message.
        if self._auth is None and address_is_loopback(self.address) is False:
            raise AdminAuthRequired(
                f"the admin API address {self.address} is not a loopback address, so it "
                "needs a bearer token: pass --admin-token-file FILE (or set "
                "spec.adminTokenFile in the SeawayConfig) with a file holding one line of "
                "random text, or listen on 127.0.0.1"
            )
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
        auth = self._auth
        if (
            auth is not None
            and request.path not in OPEN_PATHS
            and not auth.allows(request.header("Authorization"))
        ):
            return Response.text(
                401,
                "seaway's admin API needs Authorization: Bearer <token> "
                "(the token is in the file given by --admin-token-file)\n",
                (("WWW-Authenticate", CHALLENGE),),
            )
        if request.path == "/":
            return Response(200, _PAGE_HEADERS, status_page())
        if request.path == METRICS_PATH and self._metrics is not None:
            headers = (("Content-Type", self._metrics.content_type), ("Cache-Control", "no-store"))
            return Response(200, headers, self._metrics.render())
        if request.path == STATE_PATH:
            body = json.dumps(self._state(), default=str, separators=(",", ":")).encode()
            headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
            return Response(200, headers, body)
        if request.path == "/healthz":
            return Response.text(200, "ok")
        if request.path == "/readyz":
            return Response.text(200, "ok") if self._ready() else Response.text(503, "not ready")
        return Response.text(404, f"no such endpoint: {request.path}\n")
