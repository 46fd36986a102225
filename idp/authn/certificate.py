"""Certificate login without HTTP: a single-use challenge, then what the signing agent returned —
the signature over that exact challenge, the certificate's path to a trusted CA, its revocation
status, and the credit code or ID number it carries — mapped to the enterprise or person account.

The account is bound to the entity (credit code) or the person (ID number), never to one
certificate: a renewed certificate, or one from another trusted CA, reaches the same account;
each certificate that logs in is kept as history in `certificate_binding`.
"""
from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

from cryptography import x509
from sqlalchemy import Engine, bindparam, update
from sqlalchemy.exc import IntegrityError

from idp import events
from idp.accounts import Accounts, Profile, may_sign_in
from idp.crypto import equal, random_token
from idp.models import CertificateBinding
from idp.models._base import utcnow
from idp.pki import identity, path, signatures
from idp.pki.crl import Revocation
from idp.pki.errors import Refused
from idp.pki.truststore import Anchor, TrustStore, fingerprint, load_certificate
from idp.store.ephemeral import EphemeralStore, put_json, take_json
from realname.identity import Identities, IdentityTaken
from realname.pii import CreditCode, IdNumber
from realname.registry import LegalEntityRegistry

PREFIX = "yihao-login"
AMR = ("hwk", "pin")  # RFC 8176: hardware-secured key, unlocked by a PIN on the key
TLS_AMR = ("sc",)  # mutual TLS: a smart card (USB key) held the key; whether a PIN was asked is unknown
MAX_CERTIFICATE_BYTES = 16_384
MAX_CHAIN = 4
_BINDINGS = CertificateBinding.__table__  # type: ignore[attr-defined]
# Built once: a statement built per login costs more CPU than the round trip.
_SEEN = (update(_BINDINGS).where(_BINDINGS.c.account_id == bindparam("a"), _BINDINGS.c.fingerprint == bindparam("f"))
         .values(last_used_at=bindparam("now")))


@dataclass
class _Attempt:
    """What is known of an attempt so far, for the audit record of a refusal."""

    leaf: x509.Certificate | None = None
    anchor: Anchor | None = None


@dataclass(frozen=True)
class CertificateLoginResult:
    account_id: str
    profile: Profile  # with the identity level this certificate proved
    amr: tuple[str, ...]
    fingerprint: str
    ca: str
    kind: str  # enterprise | person


class CertificateLogin:
    def __init__(self, *, store: EphemeralStore, trust: TrustStore, revocation: Revocation, identities: Identities,
                 entities: LegalEntityRegistry, accounts: Accounts, engine: Engine, challenge_ttl: int) -> None:
        self._store, self._trust, self._revocation = store, trust, revocation
        self._identities, self._entities, self._accounts = identities, entities, accounts
        self._engine = engine
        self.challenge_ttl = challenge_ttl

    def challenge(self, *, interaction: str, browser: str, origin: str) -> str:
        """A fresh challenge for this sign-in on this browser: `yihao-login|<nonce>|<origin>|<iat>`.

        Origin and time are inside the signed text, so a signature made for another site, or kept
        for later, verifies over nothing this server will take."""
        nonce = random_token(24)
        text = f"{PREFIX}|{nonce}|{origin}|{int(time.time())}"
        put_json(self._store, f"certchal:{nonce}", {"u": interaction, "b": browser, "t": text}, ttl=self.challenge_ttl)
        return text

    def login(self, *, interaction: str, browser: str, challenge: str, certificate: str, signature: str,
              chain: list[str] | None = None, client_id: str | None = None,
              posted_origin: str | None = None) -> CertificateLoginResult:
        """Verify what the agent returned and find the account; Refused (audited) otherwise."""
        attempt = _Attempt()

        def run() -> CertificateLoginResult:
            self._take_challenge(challenge, interaction, browser)
            # A page under Referrer-Policy no-referrer posts with `Origin: null`: no information, so
            # only a real other origin is refused (the CSRF token and the browser binding still hold).
            if posted_origin not in (None, "null") and posted_origin != challenge.split("|")[2]:
                raise Refused("challenge_invalid", "posted from another origin")
            attempt.leaf = _certificate(certificate)
            supplied = [_certificate(c) for c in (chain or [])[:MAX_CHAIN] if c.strip()]
            if not signatures.verify(attempt.leaf, challenge.encode(), _signature(signature)):
                raise Refused("signature_invalid")
            return self._verified(attempt, supplied, AMR)

        return self._audited(attempt, run, client_id)

    def login_tls(self, *, certificate: str, client_id: str | None = None) -> CertificateLoginResult:
        """A client certificate a trusted TLS-terminating proxy verified the key of (mutual TLS):
        no challenge is needed, the handshake proved possession; the rest is checked as above."""
        attempt = _Attempt()

        def run() -> CertificateLoginResult:
            attempt.leaf = _certificate(certificate)
            return self._verified(attempt, [], TLS_AMR)

        return self._audited(attempt, run, client_id)

    def trusted(self, leaf: x509.Certificate) -> path.ValidatedPath:
        """The path from `leaf` to a trusted CA, every certificate below the CA checked for revocation
        (a client certificate at the token endpoint, RFC 8705 PKI method); Refused otherwise."""
        return self._trusted(leaf, [], _Attempt(leaf))

    def _trusted(self, leaf: x509.Certificate, supplied: list[x509.Certificate], attempt: _Attempt) -> path.ValidatedPath:
        validated = _validate(leaf, supplied, self._trust.anchors())
        attempt.anchor = validated.anchor  # named in the audit record if revocation refuses
        for child, issuer in zip(validated.certificates, validated.certificates[1:]):
            self._revocation.check(child, issuer, validated.anchor.profile)  # the trusted CA is never a child
        return validated

    def _verified(self, attempt: _Attempt, supplied: list[x509.Certificate], amr: tuple[str, ...]) -> CertificateLoginResult:
        assert attempt.leaf is not None
        return self._account(attempt.leaf, self._trusted(attempt.leaf, supplied, attempt).anchor, amr)

    def _audited(self, attempt: _Attempt, run: Callable[[], CertificateLoginResult],
                 client_id: str | None) -> CertificateLoginResult:
        try:
            return run()
        except Refused as refused:
            leaf, anchor = attempt.leaf, attempt.anchor
            events.record(events.CERTIFICATE_REFUSED, outcome="failure", client_id=client_id, reason=refused.code,
                          detail=refused.detail[:200], ca=anchor.name if anchor else None,
                          fingerprint=fingerprint(leaf) if leaf is not None else None)
            raise

    def _take_challenge(self, challenge: str, interaction: str, browser: str) -> None:
        parts = challenge.split("|")
        if len(parts) != 4 or parts[0] != PREFIX or not 20 <= len(parts[1]) <= 64:
            raise Refused("challenge_invalid", "malformed")
        # Single use by construction: whoever takes it first is the only one who can use it.
        record = take_json(self._store, f"certchal:{parts[1]}")
        if record is None:
            raise Refused("challenge_invalid", "unknown, used or expired")
        if not (equal(record["t"], challenge) and equal(record["u"], interaction) and equal(record["b"], browser)):
            raise Refused("challenge_invalid", "issued for another sign-in")

    def _account(self, leaf: x509.Certificate, anchor: Anchor, amr: tuple[str, ...]) -> CertificateLoginResult:
        found = identity.extract(leaf, anchor.profile.fields)
        if found.credit_code is None and found.id_number is None:
            raise Refused("identifier_invalid" if found.invalid else "no_identifier")
        source, level = f"certificate:{anchor.name}", anchor.profile.level
        masked: CreditCode | IdNumber
        if found.credit_code is not None:
            kind, masked = "enterprise", found.credit_code
            account_id = self._identities.find_enterprise(found.credit_code) or self._new_enterprise(
                found.credit_code, level, source)
        else:
            assert found.id_number is not None
            kind, masked = "person", found.id_number
            account_id = self._identities.find_person(found.id_number)
            if account_id is None:
                # Person accounts come from real-name registration; a certificate alone makes none.
                raise Refused("no_account", "no account holds this ID number")
        profile = self._accounts.get(account_id)
        if not may_sign_in(profile):
            raise Refused("no_account", "account disabled")
        identity_level = profile.assurance_level
        if identity_level < level:  # this CA's certificates prove more than was known (never lowers)
            self._identities.raise_level(account_id, level, source=source)
            identity_level = level
        digest = fingerprint(leaf)
        self._bind(account_id, leaf, anchor, digest, kind, masked)
        return CertificateLoginResult(account_id, replace(profile, assurance_level=identity_level), amr, digest,
                                      anchor.name, kind)

    def _new_enterprise(self, code: CreditCode, level: int, source: str) -> str:
        """First use of a credit code: the account is made only when the legal-entity registry confirms it."""
        verdict = self._entities.lookup(code)
        if verdict.outcome != "match" or verdict.status != "active" or not verdict.name:
            raise Refused("registry_refused", f"{verdict.outcome}/{verdict.status or '-'}")
        try:
            return self._identities.create_enterprise(code, name=verdict.name, level=level, source=source).id
        except IdentityTaken as taken:  # another worker made it a moment ago
            return taken.account_id

    def _bind(self, account_id: str, leaf: x509.Certificate, anchor: Anchor, digest: str, kind: str,
              masked: CreditCode | IdNumber) -> None:
        now = utcnow()
        with self._engine.begin() as connection:
            if connection.execute(_SEEN, {"a": account_id, "f": digest, "now": now}).rowcount:
                return
        row = CertificateBinding(account_id=account_id, ca_id=anchor.id, issuer=leaf.issuer.rfc4514_string()[:1024],
                                 serial=f"{leaf.serial_number:x}"[:64], fingerprint=digest, identifier_kind=kind,
                                 identifier_masked=masked.masked, first_used_at=now, last_used_at=now)
        try:
            with self._engine.begin() as connection:
                connection.execute(_BINDINGS.insert().values(**row.model_dump()))
        except IntegrityError:
            return  # the same certificate's first login on another worker wrote it
        events.record(events.CERTIFICATE_BOUND, subject=account_id, ca=anchor.name, fingerprint=digest,
                      serial=row.serial, identifier=masked.masked)


def _validate(leaf: x509.Certificate, supplied: list[x509.Certificate], anchors: tuple[Anchor, ...]) -> path.ValidatedPath:
    try:
        return path.validate(leaf, supplied, anchors, datetime.now(timezone.utc))
    except ValueError:  # an extension cryptography could not parse
        raise Refused("malformed_certificate", "unparsable extension") from None


def _certificate(text: str) -> x509.Certificate:
    """A certificate posted as PEM or as base64 of its DER."""
    if len(text) > MAX_CERTIFICATE_BYTES * 2:
        raise Refused("malformed_certificate", "too large")
    try:
        data = text.encode() if "-----BEGIN" in text else _b64(text)
        return load_certificate(data)
    except (ValueError, binascii.Error):
        raise Refused("malformed_certificate") from None


def _signature(text: str) -> bytes:
    try:
        raw = _b64(text)
    except (ValueError, binascii.Error):
        raise Refused("malformed_signature") from None
    if not 32 <= len(raw) <= 1024:
        raise Refused("malformed_signature", "length")
    return raw


def _b64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional (agents differ)."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
