"""Client authentication with signed JWTs (RFC 7523 §2.2): private_key_jwt and client_secret_jwt,
driven by authlib's client; every refusal with its exact error."""
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import text

from idp import events

from tests.idp.conftest import Person, Provider, WorkerFactory
from tests.idp.signing import DocumentHost, ec_key, host, key_rp, public_set  # noqa: F401 (host is a fixture)
from tests.live import free_port
from tests.rp import Browser, RelyingParty, SecretAssertion, callback_params, introspect, revoke


def assertion(client_id: str, key: Any, aud: str, alg: str = "ES256", kid: str | None = None,
              **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
            "jti": generate_token(24)} | claims
    header = {"alg": alg, "kid": kid if kid is not None else key.kid}
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])


def client_credentials(url: str, signed: str, **extra: str) -> httpx.Response:
    return httpx.post(url + "/token", data={
        "grant_type": "client_credentials", "client_assertion": signed,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", **extra})


def refused(response: httpx.Response, description: str) -> None:
    assert response.status_code in (400, 401), response.text
    assert response.json() == {"error": "invalid_client", "error_description": description}


def test_private_key_jwt_client_logs_a_citizen_in_and_refreshes(provider: Provider, person: Person,
                                                                browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    token = rp.fetch_token(params["code"], auth.verifier)
    claims = rp.validate_id_token(token["id_token"], auth.nonce, token["access_token"])
    assert claims["aud"] == rp.client_id
    with rp.oauth() as client:
        refreshed = client.refresh_token(rp.metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]


@pytest.mark.parametrize("alg, key", [("RS256", RSAKey.generate_key(2048, {"kid": "r"}, private=True)),
                                      ("PS256", RSAKey.generate_key(2048, {"kid": "p"}, private=True)),
                                      ("EdDSA", None)])
def test_every_asymmetric_algorithm_authenticates(provider: Provider, alg: str, key: Any) -> None:
    from joserfc.jwk import OKPKey

    key = key or OKPKey.generate_key("Ed25519", {"kid": "e"}, private=True)
    rp = key_rp(provider, key, alg=alg, scope="", token_endpoint_auth_signing_alg=alg)
    with rp.oauth() as client:
        token = client.fetch_token(rp.metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer"


def test_introspection_and_revocation_accept_private_key_jwt(provider: Provider) -> None:
    rp = key_rp(provider, ec_key("k1"), scope="")
    with rp.oauth() as client:
        token = client.fetch_token(rp.metadata["token_endpoint"], grant_type="client_credentials")
    assert introspect(rp, token["access_token"]).json()["active"] is True
    assert revoke(rp, token["access_token"]).status_code == 200
    assert introspect(rp, token["access_token"]).json() == {"active": False}


def test_client_secret_jwt_client_gets_a_token(provider: Provider) -> None:
    client, secret = provider.core.clients.create(name="HMAC", redirect_uris=[], grant_types=["client_credentials"],
                                                  token_endpoint_auth_method="client_secret_jwt")
    assert secret is not None
    rp = RelyingParty(provider.url, client.client_id, secret, "https://unused.example", scope="",
                      assertion=SecretAssertion())
    with rp.oauth() as oauth:
        assert oauth.fetch_token(rp.metadata["token_endpoint"], grant_type="client_credentials")["access_token"]
    # the secret is an HMAC key, not a password: it cannot be sent as one
    response = httpx.post(provider.url + "/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret))
    assert response.json()["error"] == "invalid_client"


def test_a_wrong_hmac_secret_is_refused(provider: Provider) -> None:
    client, _ = provider.core.clients.create(name="HMAC", redirect_uris=[], grant_types=["client_credentials"],
                                             token_endpoint_auth_method="client_secret_jwt")
    signed = assertion(client.client_id, OctKey.import_key("x" * 43), provider.url + "/token", alg="HS256", kid="")
    refused(client_credentials(provider.url, signed), "client_assertion signature does not verify")


REFUSALS = [
    ("expired", {"iat": -400, "exp": -100}, "client_assertion has expired"),
    ("too long-lived", {"exp": 3600}, "client_assertion exp must be at most 300 seconds ahead"),
    ("no iat", {"iat": None}, "client_assertion must carry exp and iat"),
    ("no jti", {"jti": None}, "client_assertion must carry a jti"),
    ("wrong aud", {"aud": "https://other.example.gov.cn/token"},
     "client_assertion aud must be the issuer or the token endpoint"),
    ("iss is not sub", {"iss": "someone-else"}, "client_assertion iss and sub must both be the client_id"),
]


@pytest.mark.parametrize("case, changes, description", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_bad_assertion_is_refused(provider: Provider, case: str, changes: dict[str, Any], description: str) -> None:
    key = ec_key("k1")
    rp = key_rp(provider, key)
    now = int(time.time())
    changes = {k: (now + v if k in ("iat", "exp") and v is not None else v) for k, v in changes.items()}
    aud = changes.pop("aud", provider.url + "/token")
    refused(client_credentials(provider.url, assertion(rp.client_id, key, aud, **changes)), description)


def test_a_replayed_jti_is_refused_by_every_worker(provider: Provider, another_worker: WorkerFactory) -> None:
    key = ec_key("k1")
    rp = key_rp(provider, key)
    signed = assertion(rp.client_id, key, provider.url)  # the issuer is an accepted audience too
    assert client_credentials(provider.url, signed).status_code == 200
    refused(client_credentials(provider.url, signed), "client_assertion jti has already been used")
    refused(client_credentials(another_worker(), signed), "client_assertion jti has already been used")
    events.flush()
    with provider.core.engine.connect() as conn:
        replays = conn.execute(text("SELECT count(*) FROM audit_event WHERE event = 'client.assertion_replayed' "
                                    "AND client_id = :c AND outcome = 'failure'"), {"c": rp.client_id}).scalar()
    assert replays == 2


def test_a_signature_by_another_key_is_refused(provider: Provider) -> None:
    rp = key_rp(provider, ec_key("k1"))
    impostor = ec_key("k1")  # same kid, different key
    refused(client_credentials(provider.url, assertion(rp.client_id, impostor, provider.url + "/token")),
            "client_assertion signature does not verify")


def test_an_unknown_kid_is_refused(provider: Provider) -> None:
    key = ec_key("k1")
    rp = key_rp(provider, key)
    refused(client_credentials(provider.url, assertion(rp.client_id, key, provider.url + "/token", kid="k9")),
            "client_assertion cannot be verified: no ES256 key of the client matches kid 'k9'")


def test_an_unregistered_algorithm_is_refused(provider: Provider) -> None:
    key = ec_key("k1")
    rp = key_rp(provider, key, token_endpoint_auth_signing_alg="ES256")
    rsa = RSAKey.generate_key(2048, {"kid": "k1"}, private=True)
    refused(client_credentials(provider.url, assertion(rp.client_id, rsa, provider.url + "/token", alg="RS256")),
            "client_assertion alg must be ES256")
    unsigned = assertion(rp.client_id, key, provider.url + "/token").rsplit(".", 1)[0].split(".", 1)[1]
    none = "eyJhbGciOiJub25lIn0." + unsigned + "."
    refused(client_credentials(provider.url, none), "client_assertion alg must be ES256")


def test_client_id_must_match_the_assertion(provider: Provider) -> None:
    key = ec_key("k1")
    rp = key_rp(provider, key)
    signed = assertion(rp.client_id, key, provider.url + "/token")
    refused(client_credentials(provider.url, signed, client_id="another"),
            "client_id does not match the client_assertion's sub")


def test_a_secret_client_cannot_switch_to_an_assertion(provider: Provider) -> None:
    client, secret = provider.core.clients.create(name="basic", redirect_uris=[], grant_types=["client_credentials"])
    signed = assertion(client.client_id, OctKey.import_key(secret or ""), provider.url + "/token", alg="HS256", kid="")
    refused(client_credentials(provider.url, signed),
            "the client is registered for client_secret_basic, not client_secret_jwt")


# -- keys published at a jwks_uri ------------------------------------------------------------------
def test_keys_are_fetched_cached_and_refetched_for_a_new_kid(provider: Provider, host: DocumentHost) -> None:
    first, second = ec_key("2026-a"), ec_key("2026-b")
    host.keys = public_set(first)
    rp = key_rp(provider, first, jwks_uri=host.url)
    token_url = provider.url + "/token"
    for _ in range(2):
        assert client_credentials(provider.url, assertion(rp.client_id, first, token_url)).status_code == 200
    assert host.hits == 1  # cached
    host.keys = public_set(first, second)  # the client rotates
    assert client_credentials(provider.url, assertion(rp.client_id, second, token_url)).status_code == 200
    assert host.hits == 2
    # another unknown kid right after: no fetch again (rate limit), refused
    refused(client_credentials(provider.url, assertion(rp.client_id, second, token_url, kid="2026-c")),
            "client_assertion cannot be verified: no ES256 key of the client matches kid '2026-c'")
    assert host.hits == 2


def test_an_oversized_key_set_is_refused(provider: Provider, host: DocumentHost) -> None:
    key = ec_key("k1")
    host.body = b'{"keys": [' + b" " * 70_000 + b"]}"
    rp = key_rp(provider, key, jwks_uri=host.url)
    for _ in range(2):  # the failure is remembered for a while: the client's server is asked once
        refused(client_credentials(provider.url, assertion(rp.client_id, key, provider.url + "/token")),
                "client_assertion cannot be verified: the client's jwks_uri is larger than 65536 bytes")
    assert host.hits == 1


def test_an_unreachable_key_set_is_refused(provider: Provider) -> None:
    key = ec_key("k1")
    rp = key_rp(provider, key, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks")
    refused(client_credentials(provider.url, assertion(rp.client_id, key, provider.url + "/token")),
            "client_assertion cannot be verified: the client's jwks_uri could not be fetched (ConnectError)")


@pytest.mark.parametrize("uri, why", [
    ("https://169.254.169.254/latest/jwks", "resolves to a loopback, link-local or reserved address"),
    ("https://127.0.0.1:9/jwks", "resolves to a loopback, link-local or reserved address"),
    ("http://127.0.0.1:9/jwks", "must use https"),
])
def test_a_provider_off_loopback_fetches_nothing_internal(provider: Provider, another_worker: WorkerFactory,
                                                          uri: str, why: str) -> None:
    issuer = "https://idp.example.gov.cn"
    worker = another_worker(issuer=issuer)
    key = ec_key("k1")
    rp = key_rp(provider, key, jwks_uri=uri)
    refused(client_credentials(worker, assertion(rp.client_id, key, issuer + "/token")),
            f"client_assertion cannot be verified: the client's jwks_uri {why}")
