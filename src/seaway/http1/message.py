"""HTTP/1.1 requests and responses as handlers see them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class Request:
    """One complete request: its head, its whole body, and who sent it.

    Header names keep the case the client sent; :meth:`header` looks them up
    case-insensitively. ``target`` is the request-target as received; ``path`` and
    ``query`` are its two parts (still percent-encoded). ``client`` is the peer's
    ``(ip, port)``, or the original client's when a PROXY protocol header said so.
    """

    method: str
    target: str
    version: str  # "1.1" or "1.0"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client: tuple[str, int] | None = None
    path: str = field(init=False)
    query: str = field(init=False)

    def __post_init__(self) -> None:
        if self.target.startswith("/") or self.target == "*":
            path, _, query = self.target.partition("?")
        else:  # absolute-form (RFC 9112 section 3.2.2) or authority-form (CONNECT)
            parts = urlsplit(self.target)
            path, query = parts.path or "/", parts.query
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "query", query)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def query_value(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (percent-decoded), or None."""
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler answers: status, headers and the whole body.

    The server adds ``Content-Length`` and ``Connection`` itself; a handler that
    sets ``Connection: close`` gets the connection closed after this response.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def text(cls, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        """A ``text/plain`` response."""
        content_type = ("Content-Type", "text/plain; charset=utf-8")
        return cls(status, (content_type, *headers), text.encode())

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Unknown"


Handler = Callable[[Request], Awaitable[Response]]
"""An async function from a request to its response; one call per request, in order."""
