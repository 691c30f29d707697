"""Certificates of TLS listeners from Ingress ``spec.tls`` and Gateway ``certificateRefs`` (pure).

A reference resolves to a TLS Secret of the snapshot (checked when parsed, so its key
pair loads). Ingress ``spec.tls[].hosts`` name the SNI names its certificate answers;
an entry without hosts gives the default certificate. A Gateway HTTPS listener's
certificate answers its ``hostname`` (no hostname: the default). A certificate
reference to another namespace needs a ReferenceGrant there allowing Gateways of the
Gateway's namespace to refer to the Secret (``seaway.core.reference_grants``); without
one it is refused (Gateway API ``RefNotPermitted``).
"""

from __future__ import annotations

from seaway.core.reference_grants import Reference, ReferenceGrants, refusal
from seaway.core.tls import TlsCertificate
from seaway.model.cluster import ClusterState
from seaway.model.routes import GATEWAY_GROUP, CertificateRef, Gateway, GatewayListener, Ingress
from seaway.model.secrets import TLS_SECRET_TYPE

# certificateRefs seaway resolves: core Secrets.
SECRET_GROUPS = frozenset({"", "core"})


def secret_certificate(state: ClusterState, key: str) -> tuple[TlsCertificate | None, str]:
    """The key pair of TLS Secret ``key`` (namespace/name), or None and why not."""
    secret = state.secrets.get(key)
    if secret is None:
        return None, f"Secret {key} not found"
    if not secret.is_tls:
        return None, f"Secret {key} is of type {secret.type}, not {TLS_SECRET_TYPE}"
    return TlsCertificate(key, secret.certificate, secret.private_key), ""


def ingress_certificates(
    state: ClusterState, ingresses: list[Ingress]
) -> tuple[list[tuple[str, TlsCertificate]], dict[str, str]]:
    """(SNI name or "", certificate) pairs of every served Ingress, oldest Ingress first,
    and the problems of each Ingress whose Secrets do not resolve."""
    entries: list[tuple[str, TlsCertificate]] = []
    problems: dict[str, str] = {}
    for ingress in ingresses:
        for index, tls in enumerate(ingress.tls):
            if tls.secret_name is None:
                continue  # "use the default certificate" in other controllers: nothing here
            cert, why = secret_certificate(state, f"{ingress.meta.namespace}/{tls.secret_name}")
            if cert is None:
                problems.setdefault(ingress.key, f"spec.tls[{index}]: {why}")
                continue
            for host in tls.hosts or ("",):
                entries.append((host, cert))
    return entries, problems


def _ref_certificate(
    state: ClusterState, gateway: Gateway, ref: CertificateRef, grants: ReferenceGrants
) -> tuple[TlsCertificate | None, str, str]:
    """The certificate, or None with the reason and message of the problem."""
    if ref.group not in SECRET_GROUPS or ref.kind != "Secret":
        why = f"certificateRefs of kind {ref.group or 'core'}/{ref.kind} are not supported"
        return None, "InvalidCertificateRef", why
    namespace = ref.namespace or gateway.meta.namespace
    reference = Reference(
        GATEWAY_GROUP, "Gateway", gateway.meta.namespace, "", "Secret", namespace, ref.name
    )
    if not grants.permits(reference):
        return None, "RefNotPermitted", refusal(reference)
    cert, why = secret_certificate(state, f"{namespace}/{ref.name}")
    return cert, "InvalidCertificateRef", why


def gateway_listener_certificates(
    state: ClusterState, gateway: Gateway, listener: GatewayListener, grants: ReferenceGrants
) -> tuple[list[tuple[str, TlsCertificate]], tuple[str, str] | None]:
    """The (SNI name, certificate) pairs of an HTTPS listener, or a problem
    (reason, message) when its TLS settings cannot be served."""
    if listener.tls_mode != "Terminate":
        return [], ("UnsupportedValue", f"tls mode {listener.tls_mode} is not served")
    entries: list[tuple[str, TlsCertificate]] = []
    for ref in listener.certificate_refs:
        cert, reason, why = _ref_certificate(state, gateway, ref, grants)
        if cert is None:
            return [], (reason, why)
        entries.append((listener.hostname or "", cert))
    if not entries:
        return [], ("InvalidCertificateRef", "no certificateRefs")
    return entries, None
