"""TLS Secrets (``v1`` Secret of type ``kubernetes.io/tls``) and loading their key pairs.

Only what TLS termination needs is kept: the PEM certificate chain (``tls.crt``) and
private key (``tls.key``). Secrets of other types are kept without their data, so that
a reference to one can say what is wrong. The material never appears in a repr.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from seaway.model.objects import ObjectMeta

# The Secret type for TLS key pairs and its two data keys (Kubernetes core API,
# SecretTypeTLS, TLSCertKey, TLSPrivateKeyKey).
TLS_SECRET_TYPE = "kubernetes.io/tls"
TLS_CERT_KEY = "tls.crt"
TLS_PRIVATE_KEY_KEY = "tls.key"


@dataclass(frozen=True, slots=True)
class Secret:
    """A ``v1`` Secret; ``certificate`` and ``private_key`` are set for TLS Secrets only."""

    meta: ObjectMeta
    type: str = "Opaque"
    certificate: bytes = field(default=b"", repr=False)
    private_key: bytes = field(default=b"", repr=False)

    @property
    def key(self) -> str:
        return self.meta.key

    @property
    def is_tls(self) -> bool:
        return self.type == TLS_SECRET_TYPE and bool(self.certificate and self.private_key)


class KeyPairError(ValueError):
    """A certificate or key that cannot be served; ``field`` is ``tls.crt`` or ``tls.key``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _refuse_password(*_: object) -> bytes:
    # An encrypted key would make OpenSSL prompt on the terminal: answer nothing, fail.
    return b""


@contextlib.contextmanager
def _in_memory_file(data: bytes) -> Iterator[str]:
    """A path whose content is ``data``: an anonymous memory file where Linux has them
    (``load_cert_chain`` reads only paths; the key never touches a disk), else a
    private temporary file."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("seaway-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="seaway-tls-") as directory:
        path = os.path.join(directory, "material.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
            out.write(data)
        yield path


def load_key_pair(context: ssl.SSLContext, certificate: bytes, private_key: bytes) -> None:
    """Load a PEM certificate chain and its key into ``context``.

    Raises ``KeyPairError`` naming the field at fault: a certificate that is not PEM or
    does not parse (``tls.crt``), a key that is not PEM, is encrypted, does not parse
    or does not belong to the certificate (``tls.key``).
    """
    if b"-----BEGIN CERTIFICATE-----" not in certificate:
        raise KeyPairError(TLS_CERT_KEY, "is not a PEM certificate (no BEGIN CERTIFICATE block)")
    if b"PRIVATE KEY-----" not in private_key:
        raise KeyPairError(TLS_PRIVATE_KEY_KEY, "is not a PEM private key (no PRIVATE KEY block)")
    if b"ENCRYPTED" in private_key:
        raise KeyPairError(TLS_PRIVATE_KEY_KEY, "is encrypted; seaway needs an unencrypted key")
    try:
        # Parses every certificate of the chain from memory (no file needed).
        ssl.create_default_context(cadata=certificate.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise KeyPairError(TLS_CERT_KEY, f"cannot be read as a certificate ({exc})") from None
    with _in_memory_file(certificate) as cert_path, _in_memory_file(private_key) as key_path:
        try:
            context.load_cert_chain(cert_path, key_path, password=_refuse_password)
        except ssl.SSLError as exc:
            text = str(exc)
            if "KEY_VALUES_MISMATCH" in text or "key values mismatch" in text:
                raise KeyPairError(
                    TLS_PRIVATE_KEY_KEY, "does not belong to the certificate in tls.crt"
                ) from None
            raise KeyPairError(
                TLS_PRIVATE_KEY_KEY, f"cannot be loaded with the certificate ({exc})"
            ) from None
        except OSError as exc:
            raise KeyPairError(TLS_PRIVATE_KEY_KEY, f"cannot be loaded ({exc})") from None


def key_pair_problem(certificate: bytes, private_key: bytes) -> KeyPairError | None:
    """Why this key pair cannot be served, or None: loads it into a throw-away context."""
    try:
        load_key_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), certificate, private_key)
    except KeyPairError as exc:
        return exc
    return None
