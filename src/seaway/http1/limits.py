"""The limits an HTTP/1.1 connection is held to, so that hostile clients cost little."""

from __future__ import annotations

from dataclasses import dataclass

# Request line plus header fields. RFC 9112 section 2.3 leaves the limit to the
# server; 16 KiB is above any browser's header block and below nginx's default of
# 4 x 8 KiB large_client_header_buffers. Beyond it the answer is 431 (RFC 6585 section 5).
MAX_HEAD_BYTES = 16 * 1024
# Request content; beyond it the answer is 413 Content Too Large (RFC 9110 section 15.5.14).
MAX_BODY_BYTES = 1024 * 1024
# Time from the first byte of a request (or from accept) to the end of its header
# block; beyond it the answer is 408 Request Timeout (RFC 9110 section 15.5.9).
# It stops "slowloris" clients that trickle header bytes.
HEADER_TIMEOUT = 10.0
# An open keep-alive connection with no request in progress is closed after this
# (RFC 9112 section 9.8 lets either side close an idle connection at any time).
# The same time bounds silence in the middle of a request body.
IDLE_TIMEOUT = 60.0
# Pipelined requests parsed and waiting for their turn before we stop reading
# (RFC 9112 section 9.3.2 requires the responses in request order; this bounds memory).
MAX_PIPELINED = 16


@dataclass(frozen=True, slots=True)
class Limits:
    """Size and time limits for one HTTP/1.1 server; the defaults are the documented ones."""

    max_head_bytes: int = MAX_HEAD_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_pipelined: int = MAX_PIPELINED
