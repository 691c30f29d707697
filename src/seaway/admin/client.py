"""Reading the admin API of a running ``seaway run`` (for ``seaway status``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from seaway.admin.server import STATE_PATH
from seaway.core.config import join_host_port
from seaway.http1 import parse_host_port


class AdminAPIError(OSError):
    """The admin API could not be reached, or answered something unusable."""


def fetch_state(address: str, timeout: float = 3.0, token: str | None = None) -> dict[str, Any]:
    """GET ``/api/v1/state`` from the admin API at ``address`` (``host:port``), with a
    bearer ``token`` when the admin API requires one."""
    try:
        host, port = parse_host_port(address)
    except ValueError as exc:
        raise AdminAPIError(str(exc)) from exc
    url = f"http://{join_host_port(host, port)}{STATE_PATH}"
    # No proxy: the admin API is local, and an http_proxy variable must not reroute it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        request = urllib.request.Request(url)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 401:
            raise AdminAPIError(
                f"seaway's admin API at {address} needs a bearer token: "
                "pass --admin-token-file FILE (the file seaway run was given)"
            ) from exc
        raise AdminAPIError(
            f"seaway's admin API at {address} answered {exc.code} {exc.reason}"
        ) from exc
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AdminAPIError(
            f"cannot reach seaway's admin API at {address}: is `seaway run` running? ({reason})"
        ) from exc
    try:
        state = json.loads(body)
    except ValueError as exc:
        raise AdminAPIError(f"seaway's admin API at {address} answered invalid JSON") from exc
    if not isinstance(state, dict):
        raise AdminAPIError(f"seaway's admin API at {address} answered JSON that is not an object")
    return state
