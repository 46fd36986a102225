"""Secrets at rest and digests: the master key, keys derived from it, AEAD, token digests."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp.settings import ConfigError, Settings

_NONCE = 12
_TAG = 16


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def random_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token (default 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """Storage key for a code, token or secret: SHA-256, never the raw value."""
    return b64u(hashlib.sha256(value.encode("utf-8")).digest())


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison."""
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


@dataclass(frozen=True)
class MasterKey:
    """The root secret; every purpose gets its own key derived with HKDF."""

    key_id: str
    secret: bytes

    def derive(self, purpose: str, length: int = 32) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=f"yihao/{purpose}".encode())
        return hkdf.derive(self.secret)

    def aead(self, purpose: str, cipher: str = "aes-256-gcm") -> Aead:
        length = 16 if cipher == "sm4-gcm" else 32
        return Aead(self.key_id, self.derive(f"aead/{purpose}", length), cipher)


class Sm4Gcm:
    """SM4-GCM (GB/T 32907 block cipher in GCM mode) with AESGCM's encrypt/decrypt interface."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        return encryptor.update(data) + encryptor.finalize() + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        body, tag = data[:-_TAG], data[-_TAG:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(body) + decryptor.finalize()


class Aead:
    """AES-256-GCM (or SM4-GCM) with a random nonce per record and associated data binding the record.

    Opening fails with ``cryptography.exceptions.InvalidTag`` on any change to the sealed bytes or
    the associated data.
    """

    def __init__(self, key_id: str, key: bytes, cipher: str = "aes-256-gcm") -> None:
        self.key_id = key_id
        self._aes = Sm4Gcm(key) if cipher == "sm4-gcm" else AESGCM(key)

    def seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aes.encrypt(nonce, plaintext, aad.encode())

    def open(self, sealed: bytes, aad: str) -> bytes:
        return self._aes.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad.encode())


def _decode_master(setting: str, text: str) -> bytes:
    try:
        raw = b64u_decode(text.strip())
    except (ValueError, TypeError):
        raise ConfigError(setting, "must be base64url of 32 random bytes") from None
    if len(raw) != 32:
        raise ConfigError(setting, f"must decode to 32 bytes, got {len(raw)}")
    return raw


def load_master_key(settings: Settings) -> MasterKey:
    """From YIHAO_MASTER_KEY, a key file, or (embedded only) a file generated under var_dir."""
    if settings.master_key:
        raw = _decode_master("YIHAO_MASTER_KEY", settings.master_key)
    elif settings.master_key_file:
        path = Path(settings.master_key_file)
        if not path.is_file():
            raise ConfigError("YIHAO_MASTER_KEY_FILE", f"no such file: {path}")
        raw = _decode_master("YIHAO_MASTER_KEY_FILE", path.read_text())
    else:
        raw = _generated_master(settings.var_dir / "master.key")
    key_id = b64u(hashlib.sha256(b"yihao-master-key-id" + raw).digest()[:6])
    return MasterKey(key_id=key_id, secret=raw)


def _generated_master(path: Path) -> bytes:
    if path.is_file():
        return _decode_master("YIHAO_MASTER_KEY_FILE", path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first
        return _decode_master("YIHAO_MASTER_KEY_FILE", path.read_text())
    with os.fdopen(fd, "w") as handle:
        handle.write(b64u(raw) + "\n")
    return raw
