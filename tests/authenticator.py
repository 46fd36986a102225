"""A software WebAuthn authenticator (ES256, attestation "none"), built from the spec, for tests.

It answers the options a relying party sends as a browser plus platform authenticator would
(WebAuthn Level 2 §6.1 authenticator data, §6.5.4 attested credential data, §8.7 "none"
attestation, §7.2 step 20: the signature covers authData || SHA-256(clientDataJSON)), so the
server's real verification runs on what it produces.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    origin: str
    user_verification: bool = True  # sets UV: a PIN or biometric was checked
    synced: bool = False  # backup eligible and backed up (a synced passkey)
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0

    def _flags(self, attested: bool) -> int:
        flags = UP | (UV if self.user_verification else 0) | ((BE | BS) if self.synced else 0)
        return flags | (AT if attested else 0)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options_json: str, *, origin: str | None = None) -> str:
        """navigator.credentials.create(): a registration credential as JSON (attestation "none")."""
        options = json.loads(options_json)
        numbers = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + cbor2.dumps(cose)
        auth_data = (hashlib.sha256(options["rp"]["id"].encode()).digest() + bytes([self._flags(True)])
                     + struct.pack(">I", self.sign_count) + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return json.dumps({"id": b64u(self.credential_id), "rawId": b64u(self.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64u(client_data), "attestationObject": b64u(attestation),
                                        "transports": ["internal"]},
                           "clientExtensionResults": {}, "authenticatorAttachment": "platform"})

    def get(self, options_json: str, *, origin: str | None = None, count: bool = True) -> str:
        """navigator.credentials.get(): an assertion as JSON, signed with the credential's key."""
        options = json.loads(options_json)
        if count:
            self.sign_count += 1
        auth_data = (hashlib.sha256(options["rpId"].encode()).digest() + bytes([self._flags(False)])
                     + struct.pack(">I", self.sign_count))
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({"id": b64u(self.credential_id), "rawId": b64u(self.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                                        "signature": b64u(signature), "userHandle": None},
                           "clientExtensionResults": {}, "authenticatorAttachment": "platform"})


def options_of(html: str) -> str:
    """The WebAuthn options (JSON) a page carries for its script, in a data block that is not run."""
    import re

    match = re.search(r'<script type="application/json" id="webauthn-options"[^>]*>(.*?)</script>', html, re.S)
    assert match, "the page carries no WebAuthn options"
    return match.group(1)
