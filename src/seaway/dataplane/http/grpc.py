"""gRPC over HTTP/2 as the proxy needs it: deadlines and the errors it answers itself.

From the gRPC HTTP/2 protocol document (grpc/doc/PROTOCOL-HTTP2.md): a request is a
POST whose content-type starts with ``application/grpc``; ``grpc-timeout`` is an
integer of at most 8 digits and a unit (H, M, S, m, u, n); an error without a
response message is a *trailers-only* response: one HEADERS frame with END_STREAM
holding ``:status 200``, the content-type, ``grpc-status`` and ``grpc-message``
(percent-encoded UTF-8).
"""

from __future__ import annotations

import enum
import re

CONTENT_TYPE = "application/grpc"
# grpc-timeout units in seconds.
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")


class GrpcStatus(enum.IntEnum):
    """The status codes the proxy itself sends (grpc/doc/statuscodes.md)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


def is_grpc(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().startswith(CONTENT_TYPE)


def parse_timeout(value: str | None) -> float | None:
    """Seconds of a ``grpc-timeout`` value, or None when absent or malformed."""
    if value is None:
        return None
    match = _TIMEOUT.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def status_for_http(status: int) -> GrpcStatus:
    """The gRPC status of an error the proxy would answer with HTTP ``status``.

    The gRPC document's HTTP-to-gRPC mapping (http-grpc-status-mapping.md), except that
    the proxy's own 504 (the backend did not answer in time) is DEADLINE_EXCEEDED.
    """
    if status == 504:
        return GrpcStatus.DEADLINE_EXCEEDED
    return {
        400: GrpcStatus.INTERNAL,
        401: GrpcStatus.UNAUTHENTICATED,
        403: GrpcStatus.PERMISSION_DENIED,
        404: GrpcStatus.UNIMPLEMENTED,
        429: GrpcStatus.UNAVAILABLE,
        500: GrpcStatus.INTERNAL,
        502: GrpcStatus.UNAVAILABLE,
        503: GrpcStatus.UNAVAILABLE,
    }.get(status, GrpcStatus.UNKNOWN)


def encode_message(message: str) -> str:
    """``grpc-message``: percent-encode everything outside printable ASCII, and '%'."""
    out = []
    for byte in message.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def trailers_only(status: GrpcStatus, message: str) -> list[tuple[str, str]]:
    """The one header block of a trailers-only error response."""
    return [
        (":status", "200"),
        ("content-type", CONTENT_TYPE),
        ("grpc-status", str(int(status))),
        ("grpc-message", encode_message(message)),
    ]


def status_trailers(status: GrpcStatus, message: str) -> list[tuple[str, str]]:
    """Trailers ending a call whose response had already started."""
    return [("grpc-status", str(int(status))), ("grpc-message", encode_message(message))]
