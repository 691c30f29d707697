"""Header rewriting between the client and the backend (pure functions).

Hop-by-hop fields are removed in both directions (RFC 9110 section 7.6.1: Connection
and every field it names, plus the fields that are hop-by-hop by definition);
``Via`` is appended (section 7.6.3); ``X-Forwarded-For``, ``X-Forwarded-Proto``,
``X-Forwarded-Host`` and ``Forwarded`` (RFC 7239) describe the client. What a client
sent in those is kept and extended only when the client is a trusted proxy;
otherwise it is replaced, so that nobody can forge their address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import NamedTuple

Headers = list[tuple[str, str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Hop-by-hop by definition (RFC 9110 section 7.6.1; Keep-Alive and Proxy-Connection
# from older practice, RFC 9112 appendix C.2.2). Expect is answered by the proxy
# itself (RFC 9110 section 10.1.1), and the framing fields are rewritten.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_REQUEST_DROP = HOP_BY_HOP | {"expect", "content-length"}
_RESPONSE_DROP = HOP_BY_HOP | {"content-length"}
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})
# The pseudonym seaway uses in Via (RFC 9110 section 7.6.3 allows one instead of a host).
VIA = "1.1 seaway"


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(client_ip: str, trusted: Sequence[Network]) -> bool:
    if not trusted:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def _forwarded_node(ip: str) -> str:
    # RFC 7239 section 6: IPv6 addresses are quoted and bracketed.
    return f'"[{ip}]"' if ":" in ip else ip


def request_headers(
    headers: Sequence[tuple[str, str]],
    *,
    client_ip: str,
    trusted: bool,
    host: str,
    upgrade: str | None,
    scheme: str = "http",
) -> Headers:
    """The fields sent to the backend (without framing fields: the caller adds them).

    ``host`` is the Host the backend receives. ``upgrade`` keeps the Upgrade field
    (and ``Connection: upgrade``) for a tunnelled protocol. ``scheme`` is how the
    client reached seaway ("https" on TLS listeners), for X-Forwarded-Proto and
    Forwarded.
    """
    # One pass, lower-casing each name once (this runs for every request).
    result: Headers = [("Host", host)]
    kept_lower: list[str] = []
    prior_via: list[str] = []
    prior_xff: list[str] = []
    prior_forwarded: list[str] = []
    options: list[str] = []
    proto = forwarded_host = None
    for name, value in headers:
        lower = name.lower()
        if lower in _REQUEST_DROP or lower == "host":
            if lower == "connection":
                options.append(value)
            continue
        if lower in _FORWARDING:
            if trusted:
                if lower == "x-forwarded-for":
                    prior_xff.append(value)
                elif lower == "forwarded":
                    prior_forwarded.append(value)
                elif lower == "x-forwarded-proto":
                    proto = proto or value
                else:
                    forwarded_host = forwarded_host or value
            continue
        if lower == "via":
            prior_via.append(value)  # sent on as one field, with seaway's hop added
            continue
        result.append((name, value))
        kept_lower.append(lower)
    if options:
        result = _without_options(result, kept_lower, options, offset=1)
    if upgrade is not None:
        result.append(("Connection", "upgrade"))
        result.append(("Upgrade", upgrade))
    result.append(("X-Forwarded-For", ", ".join([*prior_xff, client_ip])))
    result.append(("X-Forwarded-Proto", proto or scheme))
    result.append(("X-Forwarded-Host", forwarded_host or host))
    this_hop = _forwarded_hop(client_ip, host, scheme)
    result.append(("Forwarded", ", ".join([*prior_forwarded, this_hop]) if trusted else this_hop))
    result.append(("Via", ", ".join([*prior_via, VIA]) if prior_via else VIA))
    return result


# Connection values that name no other field: the usual ones, checked first.
_PLAIN_OPTIONS = frozenset({"keep-alive", "close"})


def _without_options(
    fields: Headers, lower_names: list[str], connection_values: list[str], *, offset: int
) -> Headers:
    """``fields`` without those the Connection values name (RFC 9110 section 7.6.1);
    ``lower_names[i]`` is the lower-case name of ``fields[offset + i]``."""
    if all(value.strip().lower() in _PLAIN_OPTIONS for value in connection_values):
        return fields
    named = {t.strip().lower() for value in connection_values for t in value.split(",")}
    named.discard("")
    if not any(lower in named for lower in lower_names):
        return fields  # the usual case: "keep-alive" or "close", already dropped
    kept = fields[:offset]
    kept += [f for f, lower in zip(fields[offset:], lower_names, strict=True) if lower not in named]
    return kept


# Forwarded elements by (client, host, scheme): the same few for every request of a
# keep-alive connection, so built once. Bounded: emptied when it reaches the limit.
_HOPS: dict[tuple[str, str, str], str] = {}
_HOPS_LIMIT = 4096


def _forwarded_hop(client_ip: str, host: str, scheme: str) -> str:
    """This hop's Forwarded element (RFC 7239 section 4)."""
    key = (client_ip, host, scheme)
    hop = _HOPS.get(key)
    if hop is None:
        if len(_HOPS) >= _HOPS_LIMIT:
            _HOPS.clear()
        hop = _HOPS[key] = f"for={_forwarded_node(client_ip)};host={_quoted(host)};proto={scheme}"
    return hop


def _quoted(value: str) -> str:
    # RFC 7239 section 4: a value that is not a token (a host with ':') is quoted.
    return f'"{value}"' if any(c in value for c in ':[]"') else value


class ResponseFields(NamedTuple):
    """A backend's response fields as the client gets them, and what frames the body."""

    fields: Headers  # without hop-by-hop and framing fields, with Via appended
    content_length: str | None  # the first Content-Length, as sent
    chunked: bool  # a Transfer-Encoding field was present
    upgrade: str | None  # the first Upgrade field (for a 101)


def response_fields(headers: Sequence[tuple[str, str]]) -> ResponseFields:
    """The backend's fields as the client gets them (without framing fields), plus Via,
    in one pass that lower-cases each name once (this runs for every response)."""
    result: Headers = []
    kept_lower: list[str] = []
    prior_via: list[str] = []
    options: list[str] = []
    length: str | None = None
    chunked = False
    upgrade: str | None = None
    for name, value in headers:
        lower = name.lower()
        if lower in _RESPONSE_DROP:
            if lower == "content-length":
                if length is None:
                    length = value
            elif lower == "transfer-encoding":
                chunked = True
            elif lower == "connection":
                options.append(value)
            elif lower == "upgrade" and upgrade is None:
                upgrade = value
            continue
        if lower == "via":
            prior_via.append(value)
            continue
        result.append((name, value))
        kept_lower.append(lower)
    if options:
        result = _without_options(result, kept_lower, options, offset=0)
    result.append(("Via", ", ".join([*prior_via, VIA]) if prior_via else VIA))
    return ResponseFields(result, length, chunked, upgrade)


def encode_head(start_line: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """A start line and header block, CRLF-terminated.

    Raises ValueError for a field that would break the framing (CR, LF or NUL, or an
    empty name), which can only come from configuration: the parsers reject such input,
    and names from configuration are checked to be tokens when it is read.
    """
    # Joined in C (map over ": ".join), as this runs twice per request.
    if headers:
        text = f"{start_line}\r\n{_CRLF.join(map(_COLON.join, headers))}\r\n\r\n"
    else:
        text = f"{start_line}\r\n\r\n"
    # One scan of the whole block: a CR or LF inside a field adds to the count of line
    # ends; an empty name leaves a line that starts with ":".
    line_ends = len(headers) + 2
    if (
        text.count("\r") != line_ends
        or text.count("\n") != line_ends
        or "\0" in text
        or "\n:" in text
    ):
        _check_fields(headers)
    return text.encode("latin-1")


_CRLF = "\r\n"
_COLON = ": "


def _check_fields(headers: Sequence[tuple[str, str]]) -> None:
    """Raise ValueError naming the first field with a CR, LF or NUL, or no name."""
    for name, value in headers:
        if not name or any(c in name or c in value for c in "\r\n\0"):
            raise ValueError(f"invalid header field {name!r}")


# Fields HTTP/2 forbids (RFC 9113 section 8.2.2: connection-specific), and Host, which
# :authority replaces.
_H2_DROP = HOP_BY_HOP | {"host"}


def h2_fields(headers: Sequence[tuple[str, str]], *, keep_te_trailers: bool = False) -> Headers:
    """``headers`` as HTTP/2 carries them: lower-case names, no connection-specific fields.

    ``keep_te_trailers`` keeps ``te: trailers``, the one TE value HTTP/2 allows (gRPC
    servers require it).
    """
    result: Headers = []
    for name, value in headers:
        lower = name.lower()
        if lower in _H2_DROP:
            continue
        result.append((lower, value))
    if keep_te_trailers:
        result.append(("te", "trailers"))
    return result


def wants_trailers(headers: Sequence[tuple[str, str]]) -> bool:
    """Whether the client sent ``TE: trailers``."""
    return any(name.lower() == "te" and "trailers" in value.lower() for name, value in headers)


def join_cookies(headers: Sequence[tuple[str, str]]) -> Headers:
    """HTTP/2 may split Cookie into one field per cookie; HTTP/1.1 needs one field joined
    with "; " (RFC 9113 section 8.2.3)."""
    cookies = [v for n, v in headers if n.lower() == "cookie"]
    if len(cookies) <= 1:
        return list(headers)
    result = [(n, v) for n, v in headers if n.lower() != "cookie"]
    result.append(("cookie", "; ".join(cookies)))
    return result
