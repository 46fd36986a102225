"""SQLModel tables of the identity provider; importing this registers them all in the metadata."""
from __future__ import annotations

from idp.models.account import Account
from idp.models.audit import AuditEvent
from idp.models.certificate import CertificateBinding, TrustedCa
from idp.models.client import Client
from idp.models.consent import Consent
from idp.models.keys import SigningKey
from idp.models.mfa import RecoveryCode, TotpCredential, WebAuthnCredential
from idp.models.registration import InitialAccessToken
from idp.models.tokens import LogoutDelivery, RefreshToken

__all__ = ["Account", "AuditEvent", "CertificateBinding", "Client", "Consent", "InitialAccessToken", "LogoutDelivery",
           "RecoveryCode", "RefreshToken", "SigningKey", "TotpCredential", "TrustedCa", "WebAuthnCredential"]
