"""DPoP (RFC 9449): a relying party gets key-bound tokens and uses them; every refusal, with its exact error."""
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.rp import Browser, DPoPKey, RelyingParty, callback_params, dpop_exchange, introspect

REFRESHING = ["authorization_code", "refresh_token"]
DPOP_ALGS = ["ES256", "RS256", "PS256", "EdDSA"]


def code_for(rp: RelyingParty, person: Person, **params: str) -> tuple[str, str | None]:
    browser = Browser()
    try:
        auth = rp.authorization(**params)
        response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri)
        return callback_params(response)["code"], auth.verifier
    finally:
        browser.close()


def dpop_tokens(rp: RelyingParty, person: Person, key: DPoPKey, **params: str) -> dict[str, Any]:
    response = dpop_exchange(rp, key, *code_for(rp, person, **params))
    assert response.status_code == 200, response.text
    return response.json()


def access_claims(rp: RelyingParty, token: str) -> dict[str, Any]:
    """As a resource server validates an RFC 9068 access token: signature against the JWKS, then iss."""
    decoded = jwt.decode(token, rp.jwks(), algorithms=["RS256", "ES256", "EdDSA"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": rp.issuer}, exp={"essential": True}).validate(decoded.claims)
    return dict(decoded.claims)


def refused(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


def token_url(provider: Provider) -> str:
    return provider.url + "/token"


@pytest.fixture
def public_rp(make_rp: RpFactory) -> RelyingParty:
    rp = make_rp(public=True, first_party=True, grant_types=REFRESHING, scope="openid profile email offline_access")
    rp.scope = "openid profile offline_access"
    return rp


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey()


# -- the happy path ------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", DPOP_ALGS)
def test_a_public_client_gets_dpop_bound_tokens_and_calls_userinfo_with_them(public_rp: RelyingParty, person: Person,
                                                                             alg: str) -> None:
    key = DPoPKey(alg)
    token = dpop_tokens(public_rp, person, key)
    assert token["token_type"] == "DPoP"
    claims = access_claims(public_rp, token["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}
    info = key.get(public_rp.metadata["userinfo_endpoint"], token["access_token"])
    assert info.status_code == 200, info.headers.get("www-authenticate")
    assert info.json()["sub"] == claims["sub"] and info.json()["name"] == "李四"


def test_without_a_nonce_the_token_endpoint_answers_use_dpop_nonce_with_one(provider: Provider,
                                                                            key: DPoPKey) -> None:
    response = httpx.post(token_url(provider), data={"grant_type": "client_credentials"},
                          headers={"DPoP": key.proof("POST", token_url(provider))})
    assert refused(response) == (400, "use_dpop_nonce",
                                 "a DPoP nonce is required; use the one in the DPoP-Nonce header")
    assert response.headers["dpop-nonce"]
    stale = httpx.post(token_url(provider), data={"grant_type": "client_credentials"},
                       headers={"DPoP": key.proof("POST", token_url(provider), nonce="0.AAAAAAAAAAAAAAAAAAAAAA")})
    assert refused(stale)[1:] == ("use_dpop_nonce",
                                  "the DPoP nonce is not valid or has expired; use the one in the DPoP-Nonce header")


def test_client_credentials_with_a_proof_gets_a_bound_token_that_introspection_shows(provider: Provider,
                                                                                      key: DPoPKey) -> None:
    client, secret = provider.core.clients.create(name="Queue", redirect_uris=[], grant_types=["client_credentials"],
                                                  scope="queue.read")
    assert secret is not None
    response = key.post(token_url(provider), {"grant_type": "client_credentials"}, auth=(client.client_id, secret))
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"
    assert response.headers["dpop-nonce"] == key.nonce  # RFC 9449 §8.2: the current nonce rides along
    other, other_secret = provider.core.clients.create(name="Auditor", redirect_uris=[], grant_types=["client_credentials"])
    shown = httpx.post(provider.url + "/introspect", data={"token": response.json()["access_token"]},
                       auth=(other.client_id, other_secret or "")).json()
    assert shown["active"] is True and shown["token_type"] == "DPoP" and shown["cnf"] == {"jkt": key.jkt}


def test_a_bearer_token_request_still_gets_a_bearer_token(public_rp: RelyingParty, person: Person) -> None:
    token = public_rp.exchange(*code_for(public_rp, person)).json()
    assert token["token_type"] == "Bearer" and "cnf" not in access_claims(public_rp, token["access_token"])
    assert public_rp.userinfo(token["access_token"]).status_code == 200


# -- proofs the token endpoint refuses -----------------------------------------------------------

def _cc_client(provider: Provider) -> tuple[str, str]:
    client, secret = provider.core.clients.create(name="Svc", redirect_uris=[], grant_types=["client_credentials"])
    assert secret is not None
    return client.client_id, secret


def _with_proof(provider: Provider, proof: str, **headers: str) -> httpx.Response:
    return httpx.post(token_url(provider), data={"grant_type": "client_credentials"}, auth=_cc_client(provider),
                      headers={"DPoP": proof, **headers})


@pytest.fixture
def noncing(provider: Provider, key: DPoPKey) -> DPoPKey:
    """A key that already holds the server's nonce, so each refusal below is about one thing."""
    key.nonce = provider.core.dpop.nonce()
    return key


def test_proof_refusals_at_the_token_endpoint(provider: Provider, noncing: DPoPKey) -> None:
    key, url = noncing, token_url(provider)
    other = ECKey.generate_key("P-256")
    stale = "iat is outside the accepted window; check the client's clock"
    cases = [
        ("the DPoP proof signature does not verify", key.proof("POST", url, signer=other)),
        ("htm does not match the request method POST", key.proof("GET", url)),
        (f"htu does not match the request URI {url}", key.proof("POST", provider.url + "/userinfo")),
        (f"htu does not match the request URI {url}", key.proof("POST", url + "/")),
        (stale, key.proof("POST", url, iat=int(time.time()) - 120)),
        (stale, key.proof("POST", url, iat=int(time.time()) + 60)),  # from the future
        ("iat is missing or not a number", key.proof("POST", url, iat=None)),
        ("iat is missing or not a number", key.proof("POST", url, iat=float("nan"))),
        ("typ must be dpop+jwt", key.proof("POST", url, header={"typ": "JWT"})),
        ("jwk must not contain a private key", key.proof("POST", url, header={"jwk": key.key.as_dict(private=True)})),
        ("jwk must be a public EC key for ES256", key.proof("POST", url, header={"jwk": {"kty": "oct", "k": "AAAA"}})),
        ("jti must be a unique string of at most 256 characters", key.proof("POST", url, jti=None)),
        ("the DPoP proof is not a compact JWS", "not-a-jwt"),
    ]
    for description, proof in cases:
        assert refused(_with_proof(provider, proof)) == (400, "invalid_dpop_proof", description), description


def test_symmetric_and_none_algorithms_are_refused(provider: Provider, noncing: DPoPKey) -> None:
    import base64
    import json

    def unsigned(header: dict[str, Any]) -> str:
        part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
        return f"{part(header)}.{part({'jti': 'x' * 12, 'htm': 'POST', 'htu': token_url(provider), 'iat': int(time.time())})}."

    for alg in ("none", "HS256"):
        proof = unsigned({"typ": "dpop+jwt", "alg": alg, "jwk": noncing.key.as_dict(private=False)})
        assert refused(_with_proof(provider, proof)) == (400, "invalid_dpop_proof",
                                                         "alg must be one of ES256, RS256, PS256, EdDSA")


def test_a_replayed_proof_is_refused_even_at_another_worker(provider: Provider, noncing: DPoPKey,
                                                            another_worker: WorkerFactory) -> None:
    proof = noncing.proof("POST", token_url(provider))
    client = _cc_client(provider)
    first = httpx.post(token_url(provider), data={"grant_type": "client_credentials"}, auth=client,
                       headers={"DPoP": proof})
    assert first.status_code == 200
    second = httpx.post(another_worker() + "/token", data={"grant_type": "client_credentials"}, auth=client,
                        headers={"DPoP": proof})
    assert refused(second) == (400, "invalid_dpop_proof", "the proof was already used (jti replay)")


def test_a_nonce_from_one_worker_is_accepted_by_another(provider: Provider, key: DPoPKey,
                                                        another_worker: WorkerFactory) -> None:
    client = _cc_client(provider)
    key.post(token_url(provider), {"grant_type": "client_credentials"}, auth=client)  # learns the nonce here
    other = another_worker()
    # the proof is for the URI the client was told (the issuer's), whichever worker answers
    response = httpx.post(other + "/token", data={"grant_type": "client_credentials"}, auth=client,
                          headers={"DPoP": key.proof("POST", token_url(provider))})
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"


def test_two_dpop_headers_are_refused(provider: Provider, noncing: DPoPKey) -> None:
    url = token_url(provider)
    response = httpx.post(url, data={"grant_type": "client_credentials"}, auth=_cc_client(provider),
                          headers=[("DPoP", noncing.proof("POST", url)), ("DPoP", noncing.proof("POST", url))])
    assert refused(response) == (400, "invalid_dpop_proof", "more than one DPoP header")


# -- userinfo --------------------------------------------------------------------------------------

@pytest.fixture
def bound(public_rp: RelyingParty, person: Person, key: DPoPKey) -> dict[str, Any]:
    return dpop_tokens(public_rp, person, key)


def _userinfo(rp: RelyingParty, token: str, proof: str | None, scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"} | ({"DPoP": proof} if proof else {})
    return httpx.get(rp.metadata["userinfo_endpoint"], headers=headers)


def _challenge(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.headers["www-authenticate"]


DPOP = 'DPoP algs="ES256 RS256 PS256 EdDSA"'


def test_a_bound_token_used_as_a_bearer_token_is_refused(public_rp: RelyingParty, bound: dict[str, Any]) -> None:
    response = public_rp.userinfo(bound["access_token"])
    assert _challenge(response) == (401, f'{DPOP}, error="invalid_token", error_description="the access token is '
                                         f'DPoP-bound; send it with the DPoP scheme and a proof"')


def test_userinfo_proof_refusals(public_rp: RelyingParty, bound: dict[str, Any], key: DPoPKey) -> None:
    url, token = public_rp.metadata["userinfo_endpoint"], bound["access_token"]
    other = DPoPKey()
    other.nonce = key.nonce
    cases = [
        (key.proof("GET", url), "invalid_dpop_proof", "ath is required when the proof accompanies an access token"),
        (key.proof("GET", url, token + "x"), "invalid_dpop_proof", "ath does not match the access token"),
        (key.proof("POST", url, token), "invalid_dpop_proof", "htm does not match the request method GET"),
        (other.proof("GET", url, token), "invalid_token",
         "the DPoP proof is not signed by the key the access token is bound to"),
        (None, "invalid_dpop_proof", "the DPoP scheme needs a DPoP proof"),
    ]
    for proof, error, description in cases:
        response = _userinfo(public_rp, token, proof)
        assert _challenge(response) == (401, f'{DPOP}, error="{error}", error_description="{description}"'), description


def test_userinfo_asks_for_a_nonce_and_accepts_the_proof_that_carries_it(public_rp: RelyingParty,
                                                                         bound: dict[str, Any], key: DPoPKey) -> None:
    url = public_rp.metadata["userinfo_endpoint"]
    response = _userinfo(public_rp, bound["access_token"], key.proof("GET", url, bound["access_token"], nonce=None))
    assert response.status_code == 401 and 'error="use_dpop_nonce"' in response.headers["www-authenticate"]
    assert response.headers["dpop-nonce"]
    key.nonce = response.headers["dpop-nonce"]
    answered = _userinfo(public_rp, bound["access_token"], key.proof("GET", url, bound["access_token"]))
    assert answered.status_code == 200
    key.nonce = answered.headers["dpop-nonce"]  # the current one (a new window may have begun): it works too
    assert _userinfo(public_rp, bound["access_token"], key.proof("GET", url, bound["access_token"])).status_code == 200


def test_a_bearer_token_sent_with_the_dpop_scheme_is_refused(public_rp: RelyingParty, person: Person,
                                                             key: DPoPKey) -> None:
    token = public_rp.exchange(*code_for(public_rp, person)).json()["access_token"]
    response = key.get(public_rp.metadata["userinfo_endpoint"], token)
    assert _challenge(response) == (401, f'{DPOP}, error="invalid_token", '
                                         'error_description="the access token is not DPoP-bound; send it as a bearer token"')


# -- refresh tokens of public clients are bound to the key ----------------------------------------

def _refresh(rp: RelyingParty, key: DPoPKey | None, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": rp.client_id}
    if key is None:
        return httpx.post(rp.metadata["token_endpoint"], data=data)
    return key.post(rp.metadata["token_endpoint"], data)


def test_a_public_clients_refresh_token_works_only_with_its_key(public_rp: RelyingParty, bound: dict[str, Any],
                                                                key: DPoPKey) -> None:
    assert refused(_refresh(public_rp, DPoPKey(), bound["refresh_token"])) == (
        400, "invalid_grant", "the refresh token is bound to another DPoP key")
    assert refused(_refresh(public_rp, None, bound["refresh_token"])) == (
        400, "invalid_dpop_proof", "the refresh token is DPoP-bound; send a DPoP proof of its key")
    renewed = _refresh(public_rp, key, bound["refresh_token"])  # neither refusal spent it
    assert renewed.status_code == 200 and renewed.json()["token_type"] == "DPoP"
    assert access_claims(public_rp, renewed.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    assert refused(_refresh(public_rp, DPoPKey(), renewed.json()["refresh_token"]))[1] == "invalid_grant"


def test_a_confidential_clients_refresh_token_is_not_bound_to_the_key(make_rp: RpFactory, person: Person,
                                                                      key: DPoPKey) -> None:
    rp = make_rp(first_party=True, grant_types=REFRESHING, scope="openid profile offline_access")
    rp.scope = "openid offline_access"
    token = dpop_tokens(rp, person, key)
    shown = introspect(rp, token["refresh_token"]).json()
    assert shown["active"] is True and "cnf" not in shown
    again = DPoPKey().post(rp.metadata["token_endpoint"], {"grant_type": "refresh_token",
                                                           "refresh_token": token["refresh_token"]},
                           auth=(rp.client_id, rp.client_secret or ""))
    assert again.status_code == 200 and again.json()["token_type"] == "DPoP"


# -- dpop_bound_access_tokens and dpop_jkt -----------------------------------------------------------

def test_a_client_registered_for_dpop_is_refused_without_a_proof_and_keeps_its_code(make_rp: RpFactory,
                                                                                    person: Person,
                                                                                    key: DPoPKey) -> None:
    rp = make_rp(public=True, first_party=True, dpop_bound_access_tokens=True)
    code, verifier = code_for(rp, person)
    assert refused(rp.exchange(code, verifier)) == (400, "invalid_dpop_proof",
                                                    "this client must send a DPoP proof with every token request")
    assert dpop_exchange(rp, key, code, verifier).json()["token_type"] == "DPoP"


def test_a_code_requested_with_dpop_jkt_is_redeemed_only_with_that_key(public_rp: RelyingParty, person: Person,
                                                                       key: DPoPKey) -> None:
    code, verifier = code_for(public_rp, person, dpop_jkt=key.jkt)
    assert refused(dpop_exchange(public_rp, DPoPKey(), code, verifier)) == (
        400, "invalid_grant", "the authorization code is bound to another DPoP key (dpop_jkt)")
    code, verifier = code_for(public_rp, person, dpop_jkt=key.jkt)
    assert dpop_exchange(public_rp, key, code, verifier).status_code == 200


def test_a_malformed_dpop_jkt_is_refused_at_the_redirect_uri(public_rp: RelyingParty, browser: Browser) -> None:
    response = browser.get(public_rp.authorization(dpop_jkt="not a thumbprint").url)
    params = callback_params(response)
    assert (params["error"], params["error_description"]) == (
        "invalid_request", "dpop_jkt must be a base64url SHA-256 JWK thumbprint")


def test_discovery_advertises_the_dpop_algorithms(public_rp: RelyingParty) -> None:
    assert public_rp.metadata["dpop_signing_alg_values_supported"] == DPOP_ALGS
