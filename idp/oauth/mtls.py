"""RFC 8705 at the token endpoint: client authentication with a certificate (tls_client_auth, the
PKI method) and access tokens bound to that certificate (`cnf.x5t#S256`)."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Callable

from cryptography import x509

from idp.crypto import b64u
from idp.pki.errors import Refused
from idp.pki.truststore import certificate_der

if TYPE_CHECKING:
    from idp.authn.certificate import CertificateLogin
    from idp.clients import RegisteredClient


def x5t_s256(certificate: x509.Certificate) -> str:
    """RFC 8705 §3.1: base64url SHA-256 of the certificate's DER."""
    return b64u(hashlib.sha256(certificate_der(certificate)).digest())


def bound_x5t(request: Any, client: RegisteredClient) -> str | None:
    """The thumbprint a token for this request is bound to: a tls_client_auth client's certificate."""
    certificate = getattr(request, "client_certificate", None)
    if certificate is None or client.token_endpoint_auth_method != "tls_client_auth":
        return None
    return x5t_s256(certificate)


def tls_client_auth(certificates: CertificateLogin) -> Callable[[Callable[[str], Any], Any], Any]:
    """authlib client-auth method: the certificate's subject DN is the registered one (RFC 8705
    §2.1.2) and it chains to a trusted CA, not revoked (§2.1: PKI method)."""

    def authenticate(query_client: Callable[[str], Any], request: Any) -> Any:
        client_id = request.form.get("client_id")  # RFC 8705 §2: client_id names the client
        certificate: x509.Certificate | None = getattr(request, "client_certificate", None)
        if not client_id or certificate is None:
            return None
        client = query_client(client_id)
        expected = getattr(client, "tls_client_auth_subject_dn", None)
        if expected is None or certificate.subject.rfc4514_string() != expected:
            return None
        try:
            certificates.trusted(certificate)
        except Refused:
            return None
        return client

    return authenticate
