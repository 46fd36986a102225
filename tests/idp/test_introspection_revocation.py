"""Introspection (RFC 7662) and revocation (RFC 7009), as clients and resource servers call them."""
from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from idp import jose
from idp.tokens import revoked_grant_key
from tests.conftest import Backend
from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory, serve_provider
from tests.idp.test_refresh import offline_rp, refused
from tests.rp import RelyingParty, introspect, refresh, revoke, tokens_after_login


def test_a_live_access_token_introspects_with_its_claims(provider: Provider, make_rp: RpFactory,
                                                         person: Person) -> None:
    rp = make_rp(first_party=True)
    tokens, nonce = tokens_after_login(rp, person.username, person.password)
    sub = rp.validate_id_token(tokens["id_token"], nonce)["sub"]
    response = introspect(rp, tokens["access_token"])
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert (body["sub"], body["client_id"], body["iss"], body["aud"]) == (sub, rp.client_id, provider.url, provider.url)
    assert body["scope"] == "openid profile email phone" and body["exp"] > time.time()
    assert "ref" not in body and "gid" not in body  # nothing that links the person across clients


def test_a_resource_server_may_introspect_tokens_it_was_given(make_rp: RpFactory, person: Person) -> None:
    rp, resource_server = make_rp(first_party=True), make_rp()
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    assert introspect(resource_server, tokens["access_token"]).json()["active"] is True


def test_a_deleted_clients_access_tokens_are_inactive(provider: Provider, make_rp: RpFactory, person: Person) -> None:
    rp, resource_server = make_rp(first_party=True), make_rp()
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    assert introspect(resource_server, tokens["access_token"]).json()["active"] is True
    assert provider.core.clients.delete(rp.client_id)
    assert introspect(resource_server, tokens["access_token"]).json() == {"active": False}  # RFC 7592 §2.3


def test_revoked_access_tokens_are_inactive_and_refused(make_rp: RpFactory, person: Person) -> None:
    rp = make_rp(first_party=True)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    assert rp.userinfo(tokens["access_token"]).status_code == 200  # read once: its signature is known good
    response = revoke(rp, tokens["access_token"], hint="access_token")
    assert response.status_code == 200
    assert introspect(rp, tokens["access_token"]).json() == {"active": False}
    assert rp.userinfo(tokens["access_token"]).status_code == 401


def test_a_revoked_jti_is_seen_by_another_worker(provider: Provider, make_rp: RpFactory, person: Person,
                                                  another_worker: WorkerFactory) -> None:
    if not provider.backend.production:
        pytest.skip("several workers share the Redis store; the in-process store is one worker's")
    second = another_worker()
    rp = make_rp(first_party=True)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    assert introspect(rp, tokens["access_token"], at=second).json()["active"] is True
    assert revoke(rp, tokens["access_token"]).status_code == 200  # on the first worker
    assert introspect(rp, tokens["access_token"], at=second).json() == {"active": False}
    response = httpx.get(second + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 401


def test_revoking_a_refresh_token_revokes_its_family(make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    second = refresh(rp, first["refresh_token"])
    assert introspect(rp, second["refresh_token"]).json()["token_type"] == "refresh_token"
    assert revoke(rp, second["refresh_token"], hint="refresh_token").status_code == 200
    assert introspect(rp, second["refresh_token"]).json() == {"active": False}
    assert refused(rp, second["refresh_token"]) == "the refresh token is invalid, expired or revoked"
    assert rp.userinfo(second["access_token"]).status_code == 401


def test_a_revoked_grant_stays_revoked_as_long_as_its_id_tokens_live(backend: Backend, tmp_path: Path) -> None:
    """Token exchange reads ID tokens against the grant's revocation mark: the mark must outlive them."""
    with serve_provider(backend, tmp_path, YIHAO_ID_TOKEN_TTL="3600", YIHAO_ACCESS_TOKEN_TTL="300") as provider:
        redirect = "https://rp.example.gov.cn/cb"
        client, secret = provider.core.clients.create(name="rp", redirect_uris=[redirect], first_party=True,
                                                      grant_types=["authorization_code", "refresh_token"],
                                                      scope="openid profile offline_access")
        provider.core.accounts.create("grant-holder", "correct horse battery")
        rp = RelyingParty(provider.url, client.client_id, secret, redirect, scope="openid profile offline_access")
        tokens, _ = tokens_after_login(rp, "grant-holder", "correct horse battery")
        assert revoke(rp, tokens["refresh_token"]).status_code == 200  # revokes the family: the grant
        grant_id = jose.verify(tokens["access_token"], provider.core.keys.public_key, ("RS256", "ES256", "EdDSA"),
                               typ="at+jwt")["gid"]
        left = provider.core.store.ttl(revoked_grant_key(grant_id))
        assert left is not None and left > 3600


def test_refresh_tokens_introspect_only_for_their_own_client(make_rp: RpFactory, person: Person) -> None:
    rp, other = offline_rp(make_rp), offline_rp(make_rp)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    body = introspect(rp, tokens["refresh_token"]).json()
    assert body["active"] is True and body["client_id"] == rp.client_id and body["scope"] == tokens["scope"]
    assert introspect(other, tokens["refresh_token"]).json() == {"active": False}
    rotated = refresh(rp, tokens["refresh_token"])
    assert introspect(rp, tokens["refresh_token"]).json() == {"active": False}  # spent
    assert introspect(rp, rotated["refresh_token"]).json()["active"] is True


def test_another_clients_token_is_left_alone(make_rp: RpFactory, person: Person) -> None:
    rp, other = offline_rp(make_rp), offline_rp(make_rp)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    assert revoke(other, tokens["refresh_token"]).status_code == 200  # RFC 7009: nothing to learn
    assert revoke(other, tokens["access_token"]).status_code == 200
    assert introspect(rp, tokens["refresh_token"]).json()["active"] is True
    assert introspect(rp, tokens["access_token"]).json()["active"] is True


def test_unknown_and_expired_tokens_are_simply_inactive(provider: Provider, make_rp: RpFactory) -> None:
    rp = make_rp()
    for token in ("unknown", "a.b.c", "x" * 43):
        assert introspect(rp, token).json() == {"active": False}
        assert revoke(rp, token).status_code == 200
    now = int(time.time())
    expired = jose.sign({"iss": provider.url, "sub": "s", "aud": provider.url, "client_id": rp.client_id,
                         "jti": "j", "iat": now - 700, "exp": now - 100, "scope": "openid"},
                        provider.core.keys.signing_key("RS256"), typ="at+jwt")
    assert introspect(rp, expired).json() == {"active": False}


def test_public_clients_revoke_but_cannot_introspect(make_rp: RpFactory, person: Person) -> None:
    rp = make_rp(public=True, first_party=True)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    response = httpx.post(rp.metadata["introspection_endpoint"], data={"token": tokens["access_token"],
                                                                        "client_id": rp.client_id})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert revoke(rp, tokens["access_token"]).status_code == 200
    assert rp.userinfo(tokens["access_token"]).status_code == 401


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_bad_requests_get_oauth_errors(make_rp: RpFactory, path: str) -> None:
    rp = make_rp()
    auth = (rp.client_id, rp.client_secret or "")
    missing = httpx.post(rp.issuer + path, data={"token_type_hint": "access_token"}, auth=auth)
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request", "error_description": "token is required"}
    repeated = httpx.post(rp.issuer + path, content="token=a&token=b", auth=auth,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert repeated.json() == {"error": "invalid_request", "error_description": "parameter token is repeated"}
    wrong = httpx.post(rp.issuer + path, data={"token": "a"}, auth=(rp.client_id, "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert httpx.get(rp.issuer + path).status_code == 405
