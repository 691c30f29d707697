"""Parser of ``v1`` Secrets: TLS key pairs (``kubernetes.io/tls``), checked by loading them.

A TLS Secret whose certificate or key cannot be served is a configuration error naming
the field (``data[tls.key]``, say), so the snapshot that holds it is refused and the
previous certificate keeps serving. ``stringData`` entries override ``data`` entries,
as the API server merges them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from seaway.model.fields import FieldReader
from seaway.model.objects import ObjectMeta
from seaway.model.secrets import (
    TLS_CERT_KEY,
    TLS_PRIVATE_KEY_KEY,
    TLS_SECRET_TYPE,
    Secret,
    key_pair_problem,
)


def _entry(r: FieldReader, doc: Mapping[str, object], name: str) -> tuple[bytes | None, str]:
    """The bytes of one data key and the field they came from (stringData wins)."""
    string_data = r.mapping(doc, "", "stringData") or {}
    text = string_data.get(name)
    if text is not None:
        where = f"stringData[{name}]"
        if not isinstance(text, str):
            r.error(where, "must be a string")
            return None, where
        return text.encode("utf-8"), where
    data = r.mapping(doc, "", "data") or {}
    encoded = data.get(name)
    where = f"data[{name}]"
    if encoded is None:
        r.error(where, f"is required in a {TLS_SECRET_TYPE} Secret")
        return None, where
    if not isinstance(encoded, str):
        r.error(where, "must be a base64 string")
        return None, where
    try:
        return base64.b64decode("".join(encoded.split()), validate=True), where
    except (binascii.Error, ValueError):
        r.error(where, "is not valid base64")
        return None, where


def parse_secret(r: FieldReader, doc: Mapping[str, object], meta: ObjectMeta) -> Secret:
    """A Secret; for TLS Secrets, the key pair checked by loading it into a TLS context."""
    kind = r.string(doc, "", "type") or "Opaque"
    if kind != TLS_SECRET_TYPE:
        return Secret(meta=meta, type=kind)
    certificate, cert_field = _entry(r, doc, TLS_CERT_KEY)
    private_key, key_field = _entry(r, doc, TLS_PRIVATE_KEY_KEY)
    if certificate is None or private_key is None:
        return Secret(meta=meta, type=kind)
    problem = key_pair_problem(certificate, private_key)
    if problem is not None:
        r.error(cert_field if problem.field == TLS_CERT_KEY else key_field, problem.message)
        return Secret(meta=meta, type=kind)
    return Secret(meta=meta, type=kind, certificate=certificate, private_key=private_key)


__all__ = ["parse_secret"]
