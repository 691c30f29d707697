"""A minimal HTTP/1.1 server on httptools, shared by the test backend and the admin API."""

from __future__ import annotations

from seaway.http1.address import format_sockname, parse_host_port
from seaway.http1.connections import Connection, ConnectionSet
from seaway.http1.handover import hand_over, looks_like_http
from seaway.http1.limits import Limits
from seaway.http1.message import Handler, Request, Response
from seaway.http1.protocol import HTTPServerProtocol
from seaway.http1.server import HTTPServer

__all__ = [
    "Connection",
    "ConnectionSet",
    "HTTPServer",
    "HTTPServerProtocol",
    "Handler",
    "Limits",
    "Request",
    "Response",
    "format_sockname",
    "hand_over",
    "looks_like_http",
    "parse_host_port",
]
