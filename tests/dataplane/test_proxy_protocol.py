"""PROXY protocol v1/v2 encoding and decoding against HAProxy's doc/proxy-protocol.txt."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seaway.dataplane.proxy.proxy_protocol import (
    MalformedProxyHeader,
    ProxyHeader,
    decode,
    encode_v1,
    encode_v1_unknown,
    encode_v2,
    encode_v2_local,
)

# Written by hand from the specification, section 2.2.
SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
V2_TCP4 = (
    SIG
    + b"\x21"  # version 2, command PROXY
    + b"\x11"  # AF_INET, STREAM
    + b"\x00\x0c"  # 12 address bytes
    + b"\xc0\xa8\x00\x01"  # 192.168.0.1
    + b"\xc0\xa8\x00\x0b"  # 192.168.0.11
    + b"\xdc\x04"  # 56324
    + b"\x01\xbb"  # 443
)
V2_TCP6 = (
    SIG
    + b"\x21\x21\x00\x24"  # PROXY, AF_INET6 STREAM, 36 bytes
    + b"\x20\x01\x0d\xb8"
    + b"\x00" * 11
    + b"\x01"  # 2001:db8::1
    + b"\x20\x01\x0d\xb8"
    + b"\x00" * 11
    + b"\x02"  # 2001:db8::2
    + b"\x04\xd2"  # 1234
    + b"\x00\x50"  # 80
)


def test_v1_tcp4_matches_the_spec_example() -> None:
    # Section 2.1's example line.
    assert encode_v1("192.168.0.1", 56324, "192.168.0.11", 443) == (
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    )


def test_v1_tcp6_uses_the_canonical_form() -> None:
    assert encode_v1("2001:db8:0:0:0:0:0:1", 1234, "2001:db8::2", 80) == (
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n"
    )


def test_v1_mixed_families_and_unknown() -> None:
    assert encode_v1("192.0.2.1", 1, "2001:db8::1", 2) == b"PROXY UNKNOWN\r\n"
    assert encode_v1_unknown() == b"PROXY UNKNOWN\r\n"


def test_v2_is_byte_exact() -> None:
    assert encode_v2("192.168.0.1", 56324, "192.168.0.11", 443) == V2_TCP4
    assert encode_v2("2001:db8::1", 1234, "2001:db8::2", 80) == V2_TCP6
    udp = encode_v2("192.168.0.1", 56324, "192.168.0.11", 443, transport="UDP")
    assert udp == V2_TCP4[:13] + b"\x12" + V2_TCP4[14:]
    assert encode_v2_local() == SIG + b"\x20\x00\x00\x00"
    assert encode_v2("192.0.2.1", 1, "2001:db8::1", 2) == SIG + b"\x21\x00\x00\x00"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            ProxyHeader(1, True, "IPv4", "TCP", "192.168.0.1", 56324, "192.168.0.11", 443),
        ),
        (
            b"PROXY TCP6 2001:DB8::1 2001:db8::2 1234 80\r\n",
            ProxyHeader(1, True, "IPv6", "TCP", "2001:db8::1", 1234, "2001:db8::2", 80),
        ),
        (b"PROXY UNKNOWN\r\n", ProxyHeader(1, False)),
        (b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n", ProxyHeader(1, False)),
        (
            V2_TCP4,
            ProxyHeader(2, True, "IPv4", "TCP", "192.168.0.1", 56324, "192.168.0.11", 443),
        ),
        (
            V2_TCP6,
            ProxyHeader(2, True, "IPv6", "TCP", "2001:db8::1", 1234, "2001:db8::2", 80),
        ),
        (
            V2_TCP4[:13] + b"\x12" + V2_TCP4[14:],
            ProxyHeader(2, True, "IPv4", "UDP", "192.168.0.1", 56324, "192.168.0.11", 443),
        ),
        (
            V2_TCP6[:13] + b"\x22" + V2_TCP6[14:],
            ProxyHeader(2, True, "IPv6", "UDP", "2001:db8::1", 1234, "2001:db8::2", 80),
        ),
        (SIG + b"\x20\x00\x00\x00", ProxyHeader(2, False)),  # LOCAL
        # LOCAL with an address block: the receiver must still skip `length` bytes.
        (SIG + b"\x20\x11\x00\x0c" + V2_TCP4[16:], ProxyHeader(2, False)),
        (SIG + b"\x21\x00\x00\x00", ProxyHeader(2, False)),  # PROXY, UNSPEC
        (SIG + b"\x21\x31\x00\xd8" + b"\x00" * 216, ProxyHeader(2, False)),  # UNIX stream
    ],
)
def test_decode_every_family(wire: bytes, expected: ProxyHeader) -> None:
    data = wire + b"GET / HTTP/1.1\r\n"
    assert decode(data) == (expected, len(wire))
    # Fed a byte at a time, the decoder asks for more until the header is whole.
    for cut in range(len(wire)):
        assert decode(wire[:cut]) is None, cut


def test_v2_tlvs_are_skipped() -> None:
    tlvs = b"\x02\x00\x0bexample.com" + b"\x04\x00\x03abc"  # AUTHORITY, NOOP
    wire = SIG + b"\x21\x11" + (12 + len(tlvs)).to_bytes(2, "big") + V2_TCP4[16:] + tlvs
    header, consumed = decode(wire + b"payload") or (None, 0)
    assert consumed == len(wire)
    assert header == decode(V2_TCP4)[0]  # type: ignore[index]


@pytest.mark.parametrize(
    "wire",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",  # missing a port
        b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",  # leading zero
        b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",  # out of range
        b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
        b"PROXY TCP4 192.168.000.1 192.168.0.11 1 443\r\n",  # leading zero in IPv4
        b"PROXY TCP4 2001:db8::1 192.168.0.11 1 443\r\n",  # wrong family
        b"PROXY TCP6 192.168.0.1 192.168.0.11 1 443\r\n",
        b"PROXY UDP4 192.168.0.1 192.168.0.11 1 443\r\n",
        b"PROXY TCP4 192.168.0.1  192.168.0.11 1 443\r\n",  # two spaces
        b"PROXY TCP4 192.168.0.1 192.168.0.11 1 443\n",  # LF without CR
        b"PROXY TCP4 192.168.0.1 192.168.0.11 1 443\r\r\n",
        b"PROXY UNKNOWN" + b" " * 100,  # no CRLF within 107 bytes
        b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0b",  # bad signature
        SIG + b"\x11\x11\x00\x0c" + V2_TCP4[16:],  # version 1 in a v2 header
        SIG + b"\x22\x11\x00\x0c" + V2_TCP4[16:],  # command 2
        SIG + b"\x21\x41\x00\x0c" + V2_TCP4[16:],  # family 4
        SIG + b"\x21\x13\x00\x0c" + V2_TCP4[16:],  # protocol 3
        SIG + b"\x21\x11\x00\x08" + V2_TCP4[16:24],  # shorter than an IPv4 block
        SIG + b"\x21\x21\x00\x0c" + V2_TCP4[16:],  # shorter than an IPv6 block
        SIG + b"\x21\x11\xff\xff",  # longer than seaway accepts
    ],
)
def test_malformed_headers_are_rejected(wire: bytes) -> None:
    with pytest.raises(MalformedProxyHeader):
        decode(wire + b"\r\n" * 60)


def test_malformed_prefix_is_rejected_before_it_is_complete() -> None:
    with pytest.raises(MalformedProxyHeader):
        decode(b"PROXZ")
    with pytest.raises(MalformedProxyHeader):
        decode(SIG[:5] + b"\x01")


_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_port = st.integers(0, 65535)


@given(st.one_of(st.tuples(_ipv4, _ipv4), st.tuples(_ipv6, _ipv6)), _port, _port)
def test_round_trip(addresses: tuple[str, str], sport: int, dport: int) -> None:
    source, destination = addresses
    for wire in (
        encode_v1(source, sport, destination, dport),
        encode_v2(source, sport, destination, dport),
    ):
        result = decode(wire)
        assert result is not None
        header, consumed = result
        assert consumed == len(wire)
        assert header.addresses_known
        assert ipaddress.ip_address(header.source_address) == ipaddress.ip_address(source)
        assert ipaddress.ip_address(header.destination_address) == ipaddress.ip_address(destination)
        assert (header.source_port, header.destination_port) == (sport, dport)
    assert len(encode_v1(source, sport, destination, dport)) <= 107
