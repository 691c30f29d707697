"""Typed field access for manifest parsing: the reader every kind's parser uses.

``FieldReader`` reads the fields of one object and records each problem as a
``ConfigError`` naming the source, the object and the field path, so that parsing
goes on and every problem is reported. Parsers of new kinds (in their own modules)
build on it.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol, TypeVar

from seaway.model.errors import ConfigError

PORT_MIN, PORT_MAX = 1, 65535

# Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation).
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
# IANA_SVC_NAME (RFC 6335 section 5.1): at most 15 characters, lowercase letters,
# digits and '-', at least one letter, no leading, trailing or doubled '-'.
IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
IANA_SVC_NAME_MAX = 15


class Sink(Protocol):
    """Where a reader records problems and notes."""

    errors: list[ConfigError]
    notes: list[str]


def check_name(
    r: FieldReader, path: str, value: str, *, pattern: re.Pattern[str], limit: int, what: str
) -> bool:
    if len(value) > limit or pattern.fullmatch(value) is None:
        r.error(
            path,
            f"{value!r} is not {what} (lowercase letters, digits and '-', at most {limit})",
        )
        return False
    return True


def check_label(r: FieldReader, path: str, value: str) -> bool:
    return check_name(
        r, path, value, pattern=DNS1123_LABEL, limit=DNS_LABEL_MAX, what="an RFC 1123 label"
    )


def check_subdomain(r: FieldReader, path: str, value: str) -> bool:
    labels = value.split(".")
    if len(value) > DNS_SUBDOMAIN_MAX or not all(
        len(label) <= DNS_LABEL_MAX and DNS1123_LABEL.fullmatch(label) for label in labels
    ):
        r.error(path, f"{value!r} is not an RFC 1123 subdomain (lowercase DNS name)")
        return False
    return True


# -- typed field access ----------------------------------------------------------------

T = TypeVar("T")
S = TypeVar("S", bound=str)


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, datetime.date):
        return "timestamp"
    return type(value).__name__


def expected(what: str, value: object) -> str:
    shown = f" {value!r}" if isinstance(value, str | int | float) else ""
    hint = ""
    if what == "a string" and isinstance(value, bool | int | float):
        # YAML 1.1 reads unquoted yes/no/on/off/true as booleans and 1.10 as a number.
        hint = " (quote it)"
    return f"expected {what}, got {type_name(value)}{shown}{hint}"


class FieldReader:
    """Reads the typed fields of one object, recording each problem against it.

    A field that is absent or ``null`` reads as absent (Kubernetes omits empty fields
    either way). A field of the wrong type or out of range is an error and reads as
    absent, so that reading goes on and every problem is reported.
    """

    def __init__(self, source: str, obj: str, out: Sink) -> None:
        self.source = source
        self.obj = obj
        self.out = out

    def error(self, path: str, message: str) -> None:
        self.out.errors.append(ConfigError(self.source, self.obj, path, message))

    def note(self, message: str) -> None:
        self.out.notes.append(f"{self.source}: {self.obj}: {message}")

    def value(self, m: Mapping[str, object], path: str, key: str, *, required: bool) -> object:
        value = m.get(key)
        if value is None and required:
            self.error(join_path(path, key), "is required")
        return value

    def string(
        self, m: Mapping[str, object], path: str, key: str, *, required: bool = False
    ) -> str | None:
        value = self.value(m, path, key, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(join_path(path, key), expected("a string", value))
            return None
        if required and not value:
            self.error(join_path(path, key), "must not be empty")
            return None
        return value

    def integer(
        self,
        m: Mapping[str, object],
        path: str,
        key: str,
        minimum: int,
        maximum: int | None = None,
        *,
        required: bool = False,
    ) -> int | None:
        value = self.value(m, path, key, required=required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(join_path(path, key), expected("an integer", value))
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.error(join_path(path, key), f"must be {bound}, got {value}")
            return None
        return value

    def positive_number(self, m: Mapping[str, object], path: str, key: str) -> float | None:
        value = self.value(m, path, key, required=False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(join_path(path, key), expected("a number", value))
            return None
        if not math.isfinite(value) or value <= 0:
            self.error(join_path(path, key), f"must be a finite number > 0, got {value}")
            return None
        return float(value)

    def boolean(self, m: Mapping[str, object], path: str, key: str) -> bool | None:
        value = self.value(m, path, key, required=False)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.error(join_path(path, key), expected("a boolean", value))
            return None
        return value

    def choice(
        self, m: Mapping[str, object], path: str, key: str, allowed: tuple[S, ...], default: S
    ) -> S:
        value = self.string(m, path, key)
        if value is None:
            return default
        for candidate in allowed:
            if value == candidate:
                return candidate
        self.error(join_path(path, key), f"must be one of {', '.join(allowed)}, got {value!r}")
        return default

    def checked_mapping(
        self, value: dict[object, object], path: str
    ) -> Mapping[str, object] | None:
        for key in value:
            if not isinstance(key, str):
                hint = " (quote it)" if isinstance(key, bool | int | float) else ""
                self.error(path, f"keys must be strings, got {type_name(key)} {key!r}{hint}")
                return None
        return value  # type: ignore[return-value]

    def mapping(
        self, m: Mapping[str, object], path: str, key: str, *, required: bool = False
    ) -> Mapping[str, object] | None:
        value = self.value(m, path, key, required=required)
        if value is None:
            return None
        return self.as_mapping(value, join_path(path, key))

    def as_mapping(self, value: object, path: str) -> Mapping[str, object] | None:
        if not isinstance(value, dict):
            self.error(path, expected("a mapping", value))
            return None
        return self.checked_mapping(value, path)

    def list_of(
        self,
        m: Mapping[str, object],
        path: str,
        key: str,
        read: Callable[[FieldReader, object, str], T | None],
        *,
        required: bool = False,
    ) -> list[tuple[str, T]]:
        """Each item of a list field read by ``read``, with its path (``key[i]``)."""
        value = self.value(m, path, key, required=required)
        if value is None:
            return []
        here = join_path(path, key)
        if not isinstance(value, list):
            self.error(here, expected("a list", value))
            return []
        if required and not value:
            self.error(here, "must not be empty")
        items: list[tuple[str, T]] = []
        for index, item in enumerate(value):
            item_path = f"{here}[{index}]"
            result = read(self, item, item_path)
            if result is not None:
                items.append((item_path, result))
        return items

    def string_map(self, m: Mapping[str, object], path: str, key: str) -> Mapping[str, str]:
        mapping = self.mapping(m, path, key)
        if mapping is None:
            return MappingProxyType({})
        result: dict[str, str] = {}
        for item_key, item in mapping.items():
            if isinstance(item, str):
                result[item_key] = item
            else:
                self.error(f"{join_path(path, key)}[{item_key}]", expected("a string", item))
        return MappingProxyType(result)

    def reject_unknown(self, m: Mapping[str, object], path: str, known: frozenset[str]) -> None:
        for key in m:
            if key not in known:
                self.error(
                    join_path(path, key), f"unknown field (known: {', '.join(sorted(known))})"
                )

    def section(
        self, m: Mapping[str, object], path: str, key: str, known: frozenset[str]
    ) -> Mapping[str, object] | None:
        """An optional settings mapping whose fields are all in ``known``: any other
        field is an error."""
        section = self.mapping(m, path, key)
        if section is not None:
            self.reject_unknown(section, join_path(path, key), known)
        return section


def item_mapping(r: FieldReader, value: object, path: str) -> Mapping[str, object] | None:
    return r.as_mapping(value, path)


def mapping_item(
    read: Callable[[FieldReader, Mapping[str, object], str], T | None],
) -> Callable[[FieldReader, object, str], T | None]:
    """A ``list_of`` item reader from ``read``, a reader of one mapping: an item that is
    not a mapping is an error and is left out."""

    def read_item(r: FieldReader, value: object, path: str) -> T | None:
        m = r.as_mapping(value, path)
        return None if m is None else read(r, m, path)

    return read_item


def item_string(r: FieldReader, value: object, path: str) -> str | None:
    if not isinstance(value, str):
        r.error(path, expected("a string", value))
        return None
    return value


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def item_ip(r: FieldReader, value: object, path: str) -> str | None:
    text = item_string(r, value, path)
    if text is None:
        return None
    address = parse_ip(text)
    if address is None:
        r.error(path, f"{text!r} is not a valid IP address")
        return None
    return str(address)


def item_cidr(r: FieldReader, value: object, path: str) -> str | None:
    text = item_string(r, value, path)
    if text is None:
        return None
    try:
        # Host bits are allowed and masked, as kube-proxy's net.ParseCIDR does.
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        r.error(path, f"{text!r} is not a valid CIDR (such as 10.0.0.0/8)")
        return None


def port_name_ok(name: str) -> bool:
    return (
        len(name) <= IANA_SVC_NAME_MAX
        and IANA_SVC_NAME.fullmatch(name) is not None
        and "--" not in name
        and any(c.isalpha() for c in name)
    )
