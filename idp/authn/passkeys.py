"""WebAuthn / passkeys (py_webauthn): registration and authentication ceremonies, without HTTP.

Every ceremony's challenge lives in the ephemeral store under a random ceremony id and is taken
(get-and-delete) when the response comes back, so a response is verified at most once, by any
worker. The relying party id is the issuer's host and the origin the issuer's origin (WebAuthn
§7.1 steps 9 and 13). User verification is required where the caller says so (loa/4).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, insert, select, update
from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AttestationConveyancePreference, AuthenticatorSelectionCriteria,
                                      AuthenticatorTransport, CredentialDeviceType, PublicKeyCredentialDescriptor,
                                      ResidentKeyRequirement, UserVerificationRequirement)

from idp import events
from idp.crypto import random_token
from idp.models import WebAuthnCredential
from idp.models._base import utcnow
from idp.store.ephemeral import EphemeralStore, put_json, take_json
from idp.untrusted import parse_json

CEREMONY_TTL = 300  # seconds; the browser's own timeout hint is 120 s
MAX_RESPONSE = 16_384  # characters of a credential JSON we are willing to parse
MAX_CREDENTIALS = 20


@dataclass(frozen=True)
class Ceremony:
    id: str  # goes back with the response (hidden form field)
    options: str  # PublicKeyCredential*Options as JSON for the browser


@dataclass(frozen=True)
class PasskeyUse:
    """A verified assertion: which credential, and what it proves (RFC 8176 amr)."""

    credential_id: str
    user_verified: bool
    synced: bool

    @property
    def amr(self) -> tuple[str, ...]:
        # hwk: a key bound to its device; swk: a synced passkey; user: user presence was tested
        return ("swk" if self.synced else "hwk", "user")


@dataclass(frozen=True)
class StoredPasskey:
    credential_id: str
    name: str
    created_at: int
    last_used_at: int | None


class Passkeys:
    def __init__(self, engine: Engine, store: EphemeralStore, issuer: str, rp_name: str = "Yihao 一号") -> None:
        self._engine = engine
        self._store = store
        self.rp_id = urlsplit(issuer).hostname or "localhost"
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        self._rp_name = rp_name

    @property
    def usable(self) -> bool:
        """False when the issuer's host is an IP address: WebAuthn (§5.1.3) refuses it as relying-party id."""
        try:
            ipaddress.ip_address(self.rp_id.strip("[]"))
        except ValueError:
            return True
        return False

    # -- registration ---------------------------------------------------------------------------
    def registration(self, account_id: str, username: str, display_name: str | None) -> Ceremony:
        existing = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id)) for c in self.list(account_id)]
        options = generate_registration_options(
            rp_id=self.rp_id, rp_name=self._rp_name, user_id=account_id.encode(), user_name=username,
            user_display_name=display_name or username, timeout=120_000,
            attestation=AttestationConveyancePreference.NONE, exclude_credentials=existing,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED))
        return self._ceremony("reg", account_id, options.challenge, False, options_to_json(options))

    def register(self, account_id: str, ceremony_id: str, response: str, name: str) -> bool:
        """Verify `navigator.credentials.create()`'s response and keep the credential."""
        pending = self._take("reg", ceremony_id, account_id)
        ok = False
        if pending is not None and len(response) <= MAX_RESPONSE:
            try:
                verified = verify_registration_response(
                    credential=response, expected_challenge=base64url_to_bytes(pending["c"]),
                    expected_rp_id=self.rp_id, expected_origin=self.origin)
                ok = len(self.list(account_id)) < MAX_CREDENTIALS
            except (WebAuthnException, ValueError, KeyError, TypeError, RecursionError):
                ok = False
            if ok:
                ok = self._insert(account_id, verified, _transports(response), name)
        events.record(events.MFA_ENROLLED if ok else events.MFA_ENROL_FAILED, outcome="success" if ok else "failure",
                      subject=account_id, method="webauthn")
        return ok

    def _insert(self, account_id: str, verified: Any, transports: list[str], name: str) -> bool:
        credential_id = bytes_to_base64url(verified.credential_id)
        with self._engine.begin() as connection:
            if connection.execute(select(WebAuthnCredential.credential_id).where(
                    WebAuthnCredential.credential_id == credential_id)).first() is not None:
                return False  # WebAuthn §7.1 step 25: a credential id registered already is refused
            connection.execute(insert(WebAuthnCredential), [{
                "credential_id": credential_id, "account_id": account_id,
                "public_key": verified.credential_public_key, "sign_count": verified.sign_count,
                "name": (name.strip() or "passkey")[:64], "transports": transports, "aaguid": verified.aaguid,
                "backup_eligible": verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
                "created_at": utcnow()}])
        return True

    # -- authentication -------------------------------------------------------------------------
    def authentication(self, account_id: str, *, user_verification: bool) -> Ceremony:
        allowed = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id)) for c in self.list(account_id)]
        options = generate_authentication_options(
            rp_id=self.rp_id, allow_credentials=allowed, timeout=120_000,
            user_verification=UserVerificationRequirement.REQUIRED if user_verification
            else UserVerificationRequirement.PREFERRED)
        return self._ceremony("auth", account_id, options.challenge, user_verification, options_to_json(options))

    def authenticate(self, account_id: str, ceremony_id: str, response: str) -> PasskeyUse | None:
        """Verify `navigator.credentials.get()`'s response for this account; None if it fails."""
        pending = self._take("auth", ceremony_id, account_id)
        use = self._verify(account_id, pending, response) if pending is not None and len(response) <= MAX_RESPONSE else None
        events.record(events.MFA_VERIFIED if use else events.MFA_FAILED, outcome="success" if use else "failure",
                      subject=account_id, method="webauthn")
        return use

    def _verify(self, account_id: str, pending: dict[str, Any], response: str) -> PasskeyUse | None:
        try:
            credential_id = str(parse_json(response)["id"])
        except (ValueError, KeyError, TypeError):
            return None
        with self._engine.connect() as connection:
            row = connection.execute(select(WebAuthnCredential.public_key, WebAuthnCredential.sign_count).where(
                WebAuthnCredential.credential_id == credential_id,
                WebAuthnCredential.account_id == account_id)).first()
        if row is None:
            return None
        try:
            verified = verify_authentication_response(
                credential=response, expected_challenge=base64url_to_bytes(pending["c"]), expected_rp_id=self.rp_id,
                expected_origin=self.origin, credential_public_key=row[0], credential_current_sign_count=row[1],
                require_user_verification=bool(pending["uv"]))
        except (WebAuthnException, ValueError, KeyError, TypeError, RecursionError):
            return None
        with self._engine.begin() as connection:
            # WebAuthn §7.2 step 21: the counter only moves forward; a racing clone loses here
            moved = connection.execute(update(WebAuthnCredential).where(
                WebAuthnCredential.credential_id == credential_id,  # type: ignore[arg-type]
                WebAuthnCredential.sign_count == row[1]).values(  # type: ignore[arg-type]
                sign_count=verified.new_sign_count, last_used_at=utcnow())).rowcount
        if moved != 1:
            return None
        return PasskeyUse(credential_id, verified.user_verified, verified.credential_backed_up)

    # -- management -----------------------------------------------------------------------------
    def list(self, account_id: str) -> list[StoredPasskey]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(
                WebAuthnCredential.credential_id, WebAuthnCredential.name, WebAuthnCredential.created_at,
                WebAuthnCredential.last_used_at).where(WebAuthnCredential.account_id == account_id)
                .order_by(WebAuthnCredential.created_at)).all()  # type: ignore[arg-type]
        return [StoredPasskey(r[0], r[1], int(r[2].timestamp()), int(r[3].timestamp()) if r[3] else None) for r in rows]

    def remove(self, account_id: str, credential_id: str) -> bool:
        with self._engine.begin() as connection:
            removed = connection.execute(delete(WebAuthnCredential).where(
                WebAuthnCredential.credential_id == credential_id,  # type: ignore[arg-type]
                WebAuthnCredential.account_id == account_id)).rowcount  # type: ignore[arg-type]
        if removed:
            events.record(events.MFA_REMOVED, subject=account_id, method="webauthn")
        return bool(removed)

    # -- ceremonies -----------------------------------------------------------------------------
    def _ceremony(self, kind: str, account_id: str, challenge: bytes, uv: bool, options: str) -> Ceremony:
        ceremony_id = random_token(16)
        put_json(self._store, f"wa-{kind}:{ceremony_id}",
                 {"a": account_id, "c": bytes_to_base64url(challenge), "uv": uv}, ttl=CEREMONY_TTL)
        # "<" escaped: the options sit in an HTML data block, and a display name is the person's text
        return Ceremony(ceremony_id, options.replace("<", "\\u003c"))

    def _take(self, kind: str, ceremony_id: str, account_id: str) -> dict[str, Any] | None:
        if not ceremony_id or len(ceremony_id) > 64:
            return None
        pending = take_json(self._store, f"wa-{kind}:{ceremony_id}")  # single use, whatever the outcome
        return pending if isinstance(pending, dict) and pending.get("a") == account_id else None


def _transports(response: str) -> list[str]:
    try:
        given = parse_json(response).get("response", {}).get("transports", [])
    except (ValueError, AttributeError):
        return []
    known = {t.value for t in AuthenticatorTransport}
    return [t for t in given if isinstance(t, str) and t in known][:8] if isinstance(given, list) else []
