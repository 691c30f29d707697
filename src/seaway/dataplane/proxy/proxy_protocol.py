"""The PROXY protocol, versions 1 and 2, as pure encode and decode functions.

Specification: HAProxy's ``doc/proxy-protocol.txt``. Version 1 is one text line,
version 2 a binary block; both carry the original connection's source and
destination. Nothing here touches a socket: ``decode`` works on whatever bytes have
arrived so far and says whether a whole header is there yet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal

Family = Literal["IPv4", "IPv6"]
Transport = Literal["TCP", "UDP"]

# proxy-protocol.txt section 2.1: a v1 line is at most 107 bytes including CRLF
# ("PROXY UNKNOWN" with two full IPv6 addresses and two 5-digit ports).
V1_MAX_LENGTH = 107
V1_PREFIX = b"PROXY "
# proxy-protocol.txt section 2.2: the 12-byte signature that opens every v2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# Signature + version/command + family/protocol + 16-bit length.
V2_FIXED_LENGTH = 16
# The spec lets a v2 header carry TLVs up to 65535 bytes; seaway accepts what real
# senders emit (addresses plus SSL/authority/unique-id TLVs) and refuses larger
# blocks, so that a peer cannot make a listener buffer 64 KiB before any data.
V2_MAX_PAYLOAD = 2048
# Version 2 in the high nibble; command in the low one (section 2.2).
V2_VERSION = 0x2
V2_COMMAND_LOCAL = 0x0
V2_COMMAND_PROXY = 0x1
# Address family (high nibble) and transport protocol (low nibble) of byte 14.
V2_AF_UNSPEC = 0x0
V2_AF_INET = 0x1
V2_AF_INET6 = 0x2
V2_AF_UNIX = 0x3
V2_PROTO_UNSPEC = 0x0
V2_PROTO_STREAM = 0x1
V2_PROTO_DGRAM = 0x2
# Address block lengths per family (section 2.2): 2*4+2*2, 2*16+2*2, 2*108.
V2_ADDRESS_LENGTH = {V2_AF_INET: 12, V2_AF_INET6: 36, V2_AF_UNIX: 216}


class MalformedProxyHeader(ValueError):
    """The bytes on the wire are not a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A decoded PROXY header.

    ``addresses_known`` is False for v1 ``UNKNOWN``, v2 ``LOCAL`` and v2 families or
    protocols seaway does not read (UNSPEC, UNIX): the receiver then uses the real
    connection's addresses, as the specification requires. Otherwise ``family``,
    ``transport`` and the four address fields hold the original connection.
    """

    version: Literal[1, 2]
    addresses_known: bool
    family: Family | None = None
    transport: Transport | None = None
    source_address: str = ""
    source_port: int = 0
    destination_address: str = ""
    destination_port: int = 0


def encode_v1(
    source_address: str, source_port: int, destination_address: str, destination_port: int
) -> bytes:
    """The v1 line for a TCP connection; ``PROXY UNKNOWN`` when the families differ."""
    source = ipaddress.ip_address(source_address)
    destination = ipaddress.ip_address(destination_address)
    if source.version != destination.version:
        return encode_v1_unknown()
    proto = "TCP6" if source.version == 6 else "TCP4"
    # str() of an ip_address is the canonical form the spec asks for (no leading
    # zeroes in IPv4, compressed IPv6).
    return f"PROXY {proto} {source} {destination} {source_port} {destination_port}\r\n".encode(
        "ascii"
    )


def encode_v1_unknown() -> bytes:
    """The short v1 ``UNKNOWN`` line (the receiver keeps the real addresses)."""
    return b"PROXY UNKNOWN\r\n"


def encode_v2(
    source_address: str,
    source_port: int,
    destination_address: str,
    destination_port: int,
    *,
    transport: Transport = "TCP",
) -> bytes:
    """A v2 PROXY-command header; family UNSPEC (no addresses) when the families differ."""
    source = ipaddress.ip_address(source_address)
    destination = ipaddress.ip_address(destination_address)
    command_byte = (V2_VERSION << 4) | V2_COMMAND_PROXY
    proto = V2_PROTO_STREAM if transport == "TCP" else V2_PROTO_DGRAM
    if source.version != destination.version:
        return V2_SIGNATURE + struct.pack("!BBH", command_byte, V2_AF_UNSPEC << 4, 0)
    family = V2_AF_INET6 if source.version == 6 else V2_AF_INET
    addresses = (
        source.packed + destination.packed + struct.pack("!HH", source_port, destination_port)
    )
    return (
        V2_SIGNATURE
        + struct.pack("!BBH", command_byte, (family << 4) | proto, len(addresses))
        + addresses
    )


def encode_v2_local() -> bytes:
    """A v2 LOCAL header (a connection the proxy made on its own, e.g. a health check)."""
    return V2_SIGNATURE + struct.pack("!BBH", (V2_VERSION << 4) | V2_COMMAND_LOCAL, 0, 0)


def decode(buffer: bytes | bytearray | memoryview) -> tuple[ProxyHeader, int] | None:
    """Decode a header at the start of ``buffer``.

    Returns ``(header, bytes consumed)``, or None when more bytes are needed (the
    prefix seen so far is valid). Raises ``MalformedProxyHeader`` as soon as the bytes
    cannot become a valid header, so the caller can abort the connection early.
    """
    data = bytes(buffer[: V2_FIXED_LENGTH + V2_MAX_PAYLOAD])
    if not data:
        return None
    if data[0] == V2_SIGNATURE[0]:
        return _decode_v2(data)
    if data[0] == V1_PREFIX[0]:
        return _decode_v1(data)
    raise MalformedProxyHeader("not a PROXY protocol header")


def _decode_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    prefix = data[: len(V1_PREFIX)]
    if not V1_PREFIX.startswith(prefix):
        raise MalformedProxyHeader("not a PROXY protocol header")
    end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        # A lone LF must not end the line (section 2.1).
        if b"\n" in data[:V1_MAX_LENGTH]:
            raise MalformedProxyHeader("v1 line ends without CRLF")
        if len(data) >= V1_MAX_LENGTH:
            raise MalformedProxyHeader("v1 line longer than 107 bytes")
        return None
    consumed = end + 2
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedProxyHeader("v1 line is not ASCII") from exc
    if "\r" in line or "\n" in line:
        raise MalformedProxyHeader("v1 line contains a bare CR or LF")
    fields = line.split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        # Section 2.1: anything after UNKNOWN up to the CRLF is ignored.
        return ProxyHeader(version=1, addresses_known=False), consumed
    if len(fields) != 6:
        raise MalformedProxyHeader("v1 line needs 6 fields")
    _, proto, source, destination, source_port, destination_port = fields
    if proto not in ("TCP4", "TCP6"):
        raise MalformedProxyHeader(f"v1 protocol {proto!r} is not TCP4, TCP6 or UNKNOWN")
    family: Family = "IPv4" if proto == "TCP4" else "IPv6"
    header = ProxyHeader(
        version=1,
        addresses_known=True,
        family=family,
        transport="TCP",
        source_address=_v1_address(source, family),
        source_port=_v1_port(source_port),
        destination_address=_v1_address(destination, family),
        destination_port=_v1_port(destination_port),
    )
    return header, consumed


def _v1_address(text: str, family: Family) -> str:
    try:
        address = ipaddress.IPv4Address(text) if family == "IPv4" else ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise MalformedProxyHeader(f"v1 address {text!r} is not {family}") from exc
    return str(address)


def _v1_port(text: str) -> int:
    # Decimal 0..65535 without leading zeroes (section 2.1).
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise MalformedProxyHeader(f"v1 port {text!r} is not a decimal port")
    port = int(text)
    if port > 65535:
        raise MalformedProxyHeader(f"v1 port {text!r} is out of range")
    return port


def _decode_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    signature = data[: len(V2_SIGNATURE)]
    if not V2_SIGNATURE.startswith(signature):
        raise MalformedProxyHeader("not a PROXY protocol header")
    if len(data) < V2_FIXED_LENGTH:
        if len(data) > len(V2_SIGNATURE) and data[12] >> 4 != V2_VERSION:
            raise MalformedProxyHeader("v2 version must be 2")
        return None
    version_command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != V2_VERSION:
        raise MalformedProxyHeader("v2 version must be 2")
    command = version_command & 0x0F
    if command not in (V2_COMMAND_LOCAL, V2_COMMAND_PROXY):
        raise MalformedProxyHeader(f"v2 command {command:#x} is not LOCAL or PROXY")
    family = family_protocol >> 4
    proto = family_protocol & 0x0F
    if family > V2_AF_UNIX or proto > V2_PROTO_DGRAM:
        raise MalformedProxyHeader(f"v2 family/protocol {family_protocol:#04x} is invalid")
    if length > V2_MAX_PAYLOAD:
        raise MalformedProxyHeader(f"v2 header of {length} bytes is longer than allowed")
    address_length = V2_ADDRESS_LENGTH.get(family, 0)
    if command == V2_COMMAND_PROXY and proto != V2_PROTO_UNSPEC and length < address_length:
        raise MalformedProxyHeader("v2 length is shorter than its address block")
    consumed = V2_FIXED_LENGTH + length
    if len(data) < consumed:
        return None
    # TLVs after the address block are skipped (section 2.2: receivers may ignore them).
    if (
        command == V2_COMMAND_LOCAL
        or proto == V2_PROTO_UNSPEC
        or family not in (V2_AF_INET, V2_AF_INET6)
    ):
        return ProxyHeader(version=2, addresses_known=False), consumed
    size = 4 if family == V2_AF_INET else 16
    start = V2_FIXED_LENGTH
    source = ipaddress.ip_address(data[start : start + size])
    destination = ipaddress.ip_address(data[start + size : start + 2 * size])
    source_port, destination_port = struct.unpack_from("!HH", data, start + 2 * size)
    header = ProxyHeader(
        version=2,
        addresses_known=True,
        family="IPv4" if family == V2_AF_INET else "IPv6",
        transport="TCP" if proto == V2_PROTO_STREAM else "UDP",
        source_address=str(source),
        source_port=source_port,
        destination_address=str(destination),
        destination_port=destination_port,
    )
    return header, consumed


__all__ = [
    "MalformedProxyHeader",
    "ProxyHeader",
    "decode",
    "encode_v1",
    "encode_v1_unknown",
    "encode_v2",
    "encode_v2_local",
]
