"""TOTP second factor (RFC 6238, pyotp) and recovery codes, without HTTP.

- The secret is sealed with a key derived from the master key; the associated data names the
  table, column and account, so a ciphertext copied to another account's row does not open.
- A code is accepted for the current step ±1 (RFC 6238 §5.2: one step of clock drift each way)
  and never twice: acceptance is one UPDATE that moves `last_step` forward, so of two workers
  given the same code at the same moment exactly one succeeds.
- Recovery codes are shown once and stored as keyed HMAC digests bound to the account; using
  one is one DELETE, single use by construction.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp
from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, Engine, delete, insert, select, update

from idp import events
from idp.crypto import MasterKey, b64u, equal
from idp.models import RecoveryCode, TotpCredential
from idp.models._base import utcnow
from idp.store.ephemeral import EphemeralStore

ISSUER_NAME = "Yihao 一号"
WINDOW = 1  # steps accepted either side of now
ENROL_TTL = 600  # seconds a person has to confirm a new secret
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed by hand


def _aad(account_id: str) -> str:
    return f"totp_credential/secret_sealed/{account_id}"


def normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, shown as text beside the QR code
    uri: str  # otpauth:// URI, the QR code's content


class Totp:
    """Enrol, verify and remove an account's TOTP secret and its recovery codes."""

    def __init__(self, engine: Engine, store: EphemeralStore, master: MasterKey) -> None:
        self._engine = engine
        self._store = store
        self._master_key_id = master.key_id
        self._aead = master.aead("totp-secret")
        self._recovery_key = master.derive("recovery-code")

    # -- enrolment ------------------------------------------------------------------------------
    def begin(self, account_id: str, label: str) -> Enrolment:
        """A new secret waiting for a confirming code (kept sealed in the store, not yet in force)."""
        secret = pyotp.random_base32()  # 160 bits (RFC 4226 §4 recommends at least 128)
        self._store.put(f"totp-enrol:{account_id}", self._aead.seal(secret.encode(), _aad(account_id)), ENROL_TTL)
        return self._enrolment(secret, label)

    def pending(self, account_id: str, label: str) -> Enrolment | None:
        secret = self._pending_secret(account_id)
        return self._enrolment(secret, label) if secret else None

    def _enrolment(self, secret: str, label: str) -> Enrolment:
        return Enrolment(secret, pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=ISSUER_NAME))

    def _pending_secret(self, account_id: str) -> str | None:
        sealed = self._store.get(f"totp-enrol:{account_id}")
        if sealed is None:
            return None
        try:
            return self._aead.open(sealed, _aad(account_id)).decode()
        except InvalidTag:
            return None

    def confirm(self, account_id: str, code: str) -> list[str] | None:
        """Put the pending secret in force if `code` matches it; returns the new recovery codes
        (shown once), or None. Replaces any earlier secret and recovery codes."""
        secret = self._pending_secret(account_id)
        step = _matching_step(secret, code) if secret else None
        # take(): of two confirmations racing, one puts the secret in force
        if step is None or self._store.take(f"totp-enrol:{account_id}") is None:
            events.record(events.MFA_ENROL_FAILED, outcome="failure", subject=account_id, method="otp")
            return None
        assert secret is not None
        codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
        row = {"account_id": account_id, "secret_sealed": self._aead.seal(secret.encode(), _aad(account_id)),
               "master_key_id": self._master_key_id, "last_step": step, "created_at": utcnow()}
        with self._engine.begin() as connection:
            connection.execute(delete(TotpCredential).where(TotpCredential.account_id == account_id))  # type: ignore[arg-type]
            connection.execute(insert(TotpCredential), [row])
            self._replace_recovery(connection, account_id, codes)
        events.record(events.MFA_ENROLLED, subject=account_id, method="otp")
        return codes

    def remove(self, account_id: str) -> bool:
        """Remove the secret and the recovery codes; False when there was none."""
        with self._engine.begin() as connection:
            removed = connection.execute(delete(TotpCredential).where(
                TotpCredential.account_id == account_id)).rowcount  # type: ignore[arg-type]
            connection.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))  # type: ignore[arg-type]
        if removed:
            events.record(events.MFA_REMOVED, subject=account_id, method="otp")
        return bool(removed)

    def enrolled(self, account_id: str) -> bool:
        with self._engine.connect() as connection:
            return connection.execute(select(TotpCredential.account_id).where(
                TotpCredential.account_id == account_id)).first() is not None

    def recovery_codes_left(self, account_id: str) -> int:
        with self._engine.connect() as connection:
            return len(connection.execute(select(RecoveryCode.code_digest).where(
                RecoveryCode.account_id == account_id)).all())

    # -- verification ---------------------------------------------------------------------------
    def verify(self, account_id: str, code: str) -> bool:
        """True once per accepted time step: a code already accepted (here or on any worker) fails."""
        with self._engine.connect() as connection:
            row = connection.execute(select(TotpCredential.secret_sealed, TotpCredential.last_step).where(
                TotpCredential.account_id == account_id)).first()
        step = None
        if row is not None:
            try:
                secret = self._aead.open(row[0], _aad(account_id)).decode()
            except InvalidTag:
                secret = None
            step = _matching_step(secret, code) if secret else None
        ok = step is not None and step > row[1] and self._spend(account_id, step)  # type: ignore[index]
        events.record(events.MFA_VERIFIED if ok else events.MFA_FAILED, outcome="success" if ok else "failure",
                      subject=account_id, method="otp")
        return ok

    def _spend(self, account_id: str, step: int) -> bool:
        """Move last_step forward to `step`, atomically; False if this or a later step was accepted."""
        with self._engine.begin() as connection:
            return connection.execute(
                update(TotpCredential)
                .where(TotpCredential.account_id == account_id, TotpCredential.last_step < step)  # type: ignore[arg-type]
                .values(last_step=step, last_used_at=utcnow())).rowcount == 1

    def use_recovery_code(self, account_id: str, code: str) -> bool:
        """True if `code` is one of the account's unused recovery codes; it is then used up."""
        normalised = normalise_code(code)
        ok = False
        if 0 < len(normalised) <= 32:
            with self._engine.begin() as connection:
                ok = connection.execute(delete(RecoveryCode).where(
                    RecoveryCode.code_digest == self._digest(account_id, normalised))).rowcount == 1  # type: ignore[arg-type]
        events.record(events.MFA_VERIFIED if ok else events.MFA_FAILED, outcome="success" if ok else "failure",
                      subject=account_id, method="recovery_code")
        return ok

    def _replace_recovery(self, connection: Connection, account_id: str, codes: list[str]) -> None:
        connection.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))  # type: ignore[arg-type]
        now = utcnow()
        connection.execute(insert(RecoveryCode), [
            {"code_digest": self._digest(account_id, normalise_code(c)), "account_id": account_id, "created_at": now}
            for c in codes])

    def _digest(self, account_id: str, normalised: str) -> str:
        # Keyed and bound to the account: a leaked table neither reveals codes (≈50 bits each) nor
        # lets a code be moved to another account.
        return b64u(hmac.new(self._recovery_key, f"{account_id}|{normalised}".encode(), hashlib.sha256).digest())


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step within ±WINDOW whose code equals `code` (constant-time compare), newest first."""
    code = "".join(code.split())
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    found = None
    for step in range(current + WINDOW, current - WINDOW - 1, -1):  # every candidate checked: no timing tell
        if equal(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"
