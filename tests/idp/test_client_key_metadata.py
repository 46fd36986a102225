"""Registering the keys, methods and algorithms of signing clients: what fits together is accepted,
the rest refused with a description naming the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from idp.clients import ClientInputError
from tests.idp.conftest import Provider
from tests.idp.signing import ec_key, public_set
from tests.idp.test_cli import _env, _scalar
from tests.live import yihao

REDIRECT = ["https://tax.example.gov.cn/cb"]
KEYS = public_set(ec_key("k1"))


def test_clients_create_registers_a_private_key_jwt_client_without_a_secret(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KEYS))
    result = yihao(_env(tmp_path), "clients", "create", "--name", "税务 Tax", "--redirect-uri", REDIRECT[0],
                   "--auth-method", "private_key_jwt", "--jwks", str(jwks), "--auth-signing-alg", "ES256",
                   "--request-object-alg", "ES256", "--require-par", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"client_id"}
    row = f"FROM client WHERE client_id = '{out['client_id']}'"
    assert _scalar(tmp_path, f"SELECT token_endpoint_auth_method {row}") == "private_key_jwt"
    assert _scalar(tmp_path, f"SELECT secret_digest {row}") is None
    assert _scalar(tmp_path, f"SELECT require_pushed_authorization_requests {row}") == 1


def test_clients_create_seals_a_client_secret_jwt_secret(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "clients", "create", "--name", "HMAC", "--redirect-uri", REDIRECT[0],
                   "--auth-method", "client_secret_jwt", "--json")
    secret = json.loads(result.stdout)["client_secret"]
    sealed = _scalar(tmp_path, "SELECT secret_sealed FROM client WHERE token_endpoint_auth_method = 'client_secret_jwt'")
    assert isinstance(sealed, bytes) and secret.encode() not in sealed


def test_clients_create_refuses_private_key_jwt_without_keys(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "clients", "create", "--name", "K", "--redirect-uri", REDIRECT[0],
                   "--auth-method", "private_key_jwt")
    assert result.returncode == 1
    assert result.stderr.strip() == "yihao: private_key_jwt needs the client's public keys: jwks or jwks_uri"


BAD = [
    ({"jwks": {"keys": [ec_key("k1").as_dict(private=True)]}}, "jwks must hold public keys only"),
    ({"jwks": {"keys": []}}, "jwks must be a JWK Set: an object with a non-empty keys array"),
    ({"jwks": KEYS, "jwks_uri": "https://rp.example.gov.cn/jwks"}, "jwks and jwks_uri must not both be given"),
    ({"jwks_uri": "http://rp.example.gov.cn/jwks"},
     "jwks_uri 'http://rp.example.gov.cn/jwks' must use https (http only on loopback)"),
    ({"jwks": KEYS, "token_endpoint_auth_signing_alg": "HS256"},
     "token_endpoint_auth_signing_alg must be one of RS256, PS256, ES256, EdDSA for private_key_jwt"),
    ({"token_endpoint_auth_method": "client_secret_basic", "token_endpoint_auth_signing_alg": "RS256"},
     "token_endpoint_auth_signing_alg needs private_key_jwt or client_secret_jwt"),
    ({"jwks": KEYS, "request_object_signing_alg": "HS256"},
     "request_object_signing_alg must be one of RS256, PS256, ES256, EdDSA, none"),
    ({"token_endpoint_auth_method": "client_secret_basic", "request_object_signing_alg": "ES256"},
     "signed request objects need the client's public keys: jwks or jwks_uri"),
    ({"jwks": KEYS, "request_uris": ["http://rp.example.gov.cn/r"]},
     "request_uri 'http://rp.example.gov.cn/r' must use https (http only on loopback)"),
    ({"token_endpoint_auth_method": "tls_client_auth"}, "token_endpoint_auth_method 'tls_client_auth' is not supported"),
]


@pytest.mark.parametrize("metadata, message", BAD, ids=[m for _, m in BAD])
def test_unfitting_key_metadata_is_refused(provider: Provider, metadata: dict, message: str) -> None:
    metadata = {"token_endpoint_auth_method": "private_key_jwt"} | metadata
    with pytest.raises(ClientInputError) as refused:
        provider.core.clients.create(name="K", redirect_uris=REDIRECT, **metadata)
    assert str(refused.value) == message
