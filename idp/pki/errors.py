"""Why a certificate login is refused: one stable code per reason, each with a page message in
both languages (`cert.refused.<code>` in idp/locales) and an audit event."""
from __future__ import annotations

REASONS = (
    "untrusted_ca", "expired", "not_yet_valid", "revoked", "revocation_unknown", "key_usage",
    "algorithm_not_allowed", "chain_invalid", "signature_invalid", "challenge_invalid",
    "malformed_certificate", "malformed_signature", "no_identifier", "identifier_invalid",
    "registry_refused", "no_account",
)


class Refused(Exception):
    """A refusal with its stable `code` (one of REASONS); `detail` is for the audit row, never PII."""

    def __init__(self, code: str, detail: str = "") -> None:
        assert code in REASONS, code
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
