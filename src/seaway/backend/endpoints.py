"""The test backend's HTTP endpoints (a subset of agnhost netexec's, plus switches)."""

from __future__ import annotations

from seaway.backend.state import BackendState
from seaway.core.config import join_host_port
from seaway.http1 import Handler, Request, Response

_GET = ("GET", "HEAD")


def backend_handler(state: BackendState) -> Handler:
    """The handler answering every HTTP request of the backend named ``state.name``.

    - ``GET /`` and ``GET /hostname``: the name;
    - ``GET /echo?msg=X``: X; ``POST /echo``: the request body;
    - ``GET /clientip``: ``ip:port`` of the client as seen (after any PROXY header);
    - ``GET /healthz``, ``GET /readyz``: 200 ``ok`` or 503;
    - ``POST /healthz/fail|ok``, ``POST /readyz/fail|ok``: switch them.
    """

    async def handle(request: Request) -> Response:
        path, method = request.path, request.method
        if path in ("/", "/hostname"):
            return _only(method, _GET) or Response.text(200, state.name)
        if path == "/echo":
            if method == "POST":
                content_type = request.header("content-type") or "application/octet-stream"
                return Response(200, (("Content-Type", content_type),), request.body)
            return _only(method, (*_GET, "POST")) or Response.text(
                200, request.query_value("msg") or ""
            )
        if path == "/clientip":
            client = request.client
            text = join_host_port(*client) if client else ""
            return _only(method, _GET) or Response.text(200, text)
        if path == "/healthz":
            return _only(method, _GET) or _status(state.healthy, "not healthy")
        if path == "/readyz":
            return _only(method, _GET) or _status(state.ready, "not ready")
        if path in ("/healthz/fail", "/healthz/ok"):
            refused = _only(method, ("POST",))
            if refused is None:
                state.healthy = path.endswith("/ok")
            return refused or Response.text(200, f"healthy: {str(state.healthy).lower()}")
        if path in ("/readyz/fail", "/readyz/ok"):
            refused = _only(method, ("POST",))
            if refused is None:
                state.ready_flag = path.endswith("/ok")
            return refused or Response.text(200, f"ready: {str(state.ready).lower()}")
        return Response.text(404, f"no such endpoint: {path}")

    return handle


def _status(good: bool, why: str) -> Response:
    return Response.text(200, "ok") if good else Response.text(503, why)


def _only(method: str, allowed: tuple[str, ...]) -> Response | None:
    """None when ``method`` is allowed, else a 405 naming the allowed ones (RFC 9110 15.5.6)."""
    if method in allowed:
        return None
    return Response.text(405, f"method {method} not allowed", (("Allow", ", ".join(allowed)),))
