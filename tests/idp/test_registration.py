"""Dynamic client registration (RFC 7591) and management (RFC 7592): every refusal by its exact error."""
from __future__ import annotations

import ipaddress
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from idp.backchannel import Outbox
from idp.models import LogoutDelivery

from idp.clients import AUTH_METHODS, GRANT_TYPES, SUPPORTED_SCOPES
from idp.registration import iat
from tests.idp.conftest import Documents, Person, Provider, WorkerFactory
from tests.live import free_port, yihao
from tests.rp import Browser, register, registered_rp, tokens_after_login

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def _host() -> str:
    return f"rp-{uuid.uuid4().hex[:8]}.example.gov.cn"


def _metadata(**extra: Any) -> dict[str, Any]:
    return {"client_name": "社保查询 Social security", "redirect_uris": [f"https://{_host()}/cb"], **extra}


def _clients(provider: Provider) -> int:
    with provider.core.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM client")).scalar_one())


@pytest.fixture
def open_at(another_worker: WorkerFactory) -> str:
    """A worker of the deployment with YIHAO_REGISTRATION=open."""
    return another_worker(registration="open")


def test_open_registration_returns_credentials_and_the_client_logs_a_person_in(provider: Provider, open_at: str,
                                                                                person: Person) -> None:
    response = register(provider.url, _metadata(scope="openid profile", logo_uri="https://cdn.example.gov.cn/l.png"),
                        at=open_at)
    body = response.json()
    assert response.status_code == 201 and response.headers["cache-control"] == "no-store"
    assert body["client_secret_expires_at"] == 0 and len(body["client_secret"]) >= 43
    assert body["registration_client_uri"] == f"{provider.url}/register/{body['client_id']}"
    assert body["token_endpoint_auth_method"] == "client_secret_basic" and body["subject_type"] == "pairwise"
    assert body["logo_uri"] == "https://cdn.example.gov.cn/l.png" and body["scope"] == "openid profile"
    assert abs(body["client_id_issued_at"] - time.time()) < 60
    rp = registered_rp(provider.url, response, scope="openid profile")
    tokens, nonce = tokens_after_login(rp, person.username, person.password)
    claims = rp.validate_id_token(tokens["id_token"], nonce, tokens["access_token"])
    assert claims["sub"] != person.id  # pairwise by default


def test_token_policy_refuses_a_request_without_an_initial_access_token(provider: Provider) -> None:
    before = _clients(provider)
    response = register(provider.url, _metadata())
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {"error": "invalid_token",
                               "error_description": "an initial access token is required (Authorization: Bearer …)"}
    assert _clients(provider) == before


def test_an_unknown_initial_access_token_is_refused(provider: Provider) -> None:
    response = register(provider.url, _metadata(), token="not-a-token")
    assert response.status_code == 401
    assert response.json()["error_description"] == ("an initial access token is required (Authorization: Bearer …); "
                                                     "the one sent is invalid, expired or used up")


def test_a_single_use_initial_access_token_registers_one_client(provider: Provider) -> None:
    token, _ = iat.issue(provider.core.engine)
    assert register(provider.url, _metadata(), token=token).status_code == 201
    again = register(provider.url, _metadata(), token=token)
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"


def test_a_counted_initial_access_token_registers_that_many_clients(provider: Provider) -> None:
    token, _ = iat.issue(provider.core.engine, uses=3)
    assert [register(provider.url, _metadata(), token=token).status_code for _ in range(4)] == [201, 201, 201, 401]


def test_an_expired_initial_access_token_is_refused(provider: Provider) -> None:
    token, _ = iat.issue(provider.core.engine, ttl=1)
    time.sleep(1.2)
    assert register(provider.url, _metadata(), token=token).status_code == 401


def test_of_concurrent_registrations_with_the_last_use_exactly_one_succeeds(provider: Provider) -> None:
    token, _ = iat.issue(provider.core.engine)
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: register(provider.url, _metadata(), token=token).status_code, range(6)))
    assert sorted(statuses) == [201, 401, 401, 401, 401, 401]


def test_a_refused_registration_does_not_spend_the_initial_access_token(provider: Provider) -> None:
    token, _ = iat.issue(provider.core.engine)
    refused = register(provider.url, _metadata(redirect_uris=["https://a.example.gov.cn/cb#x"]), token=token)
    assert refused.status_code == 400
    assert register(provider.url, _metadata(), token=token).status_code == 201


# Lists of what is supported are read from the tables other features extend.
REFUSALS = [
    pytest.param({"redirect_uris": ["https://rp.example.gov.cn/cb#frag"]}, "invalid_redirect_uri",
                 "redirect_uri 'https://rp.example.gov.cn/cb#frag' must not contain a fragment", id="fragment"),
    pytest.param({"redirect_uris": ["/cb"]}, "invalid_redirect_uri",
                 "redirect_uri '/cb' must be an absolute URI", id="relative"),
    pytest.param({"redirect_uris": ["http://rp.example.gov.cn/cb"]}, "invalid_redirect_uri",
                 "redirect_uri 'http://rp.example.gov.cn/cb' must use https (http only on loopback)", id="http"),
    pytest.param({"redirect_uris": ["http://127.0.0.1:8080/cb"]}, "invalid_redirect_uri",
                 "redirect_uri 'http://127.0.0.1:8080/cb' must use https for a web client (loopback http and "
                 "private-use schemes are for application_type native)", id="web-loopback"),
    pytest.param({"application_type": "native", "redirect_uris": ["myapp:/cb"]}, "invalid_redirect_uri",
                 "redirect_uri 'myapp:/cb': a private-use scheme must be a reversed domain name", id="native-scheme"),
    pytest.param({"application_type": "native", "redirect_uris": ["http://localhost:8080/cb"]}, "invalid_redirect_uri",
                 "redirect_uri 'http://localhost:8080/cb': use the loopback IP literal 127.0.0.1 or [::1], not "
                 "localhost (RFC 8252 §8.3)", id="native-localhost"),
    pytest.param({"redirect_uris": []}, "invalid_redirect_uri", "redirect_uris is required", id="no-redirect"),
    pytest.param({"redirect_uris": "https://rp.example.gov.cn/cb"}, "invalid_redirect_uri",
                 "redirect_uris must be an array of non-empty strings", id="redirect-not-array"),
    pytest.param({"application_type": "desktop"}, "invalid_client_metadata",
                 "application_type 'desktop' is not supported (supported: web, native)", id="application-type"),
    pytest.param({"response_types": ["code", "id_token"]}, "invalid_client_metadata",
                 "response_type 'id_token' is not supported (supported: code)", id="response-type"),
    pytest.param({"grant_types": ["implicit"]}, "invalid_client_metadata",
                 f"grant_type 'implicit' is not supported (supported: {', '.join(GRANT_TYPES)})", id="grant-type"),
    pytest.param({"grant_types": ["refresh_token"]}, "invalid_client_metadata",
                 "grant_types must include authorization_code: response_types code needs it (RFC 7591 §2.1)",
                 id="code-without-its-grant"),
    pytest.param({"token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"]},
                 "invalid_client_metadata", "a public client cannot use client_credentials", id="public-machine"),
    pytest.param({"token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata",
                 f"token_endpoint_auth_method 'tls_client_auth' is not supported (supported: {', '.join(AUTH_METHODS)})",
                 id="auth-method"),
    pytest.param({"id_token_signed_response_alg": "none"}, "invalid_client_metadata",
                 "id_token_signed_response_alg none is not supported: this provider always signs "
                 "(supported: RS256, ES256, EdDSA)", id="alg-none"),
    pytest.param({"userinfo_signed_response_alg": "HS256"}, "invalid_client_metadata",
                 "userinfo_signed_response_alg 'HS256' is not supported (supported: RS256, ES256, EdDSA)", id="alg-hs256"),
    pytest.param({"id_token_encrypted_response_alg": "RSA-OAEP"}, "invalid_client_metadata",
                 "id_token_encrypted_response_alg is not supported: this provider does not encrypt ID tokens",
                 id="encryption"),
    pytest.param({"subject_type": "public"}, "invalid_client_metadata",
                 "subject_type public needs an administrator's approval (an initial access token issued with "
                 "--public-subject); use pairwise", id="public-subject"),
    pytest.param({"subject_type": "anonymous"}, "invalid_client_metadata",
                 "subject_type 'anonymous' is not supported (supported: pairwise, public)", id="subject-type"),
    pytest.param({"redirect_uris": ["https://a.example.gov.cn/cb", "https://b.example.gov.cn/cb"]},
                 "invalid_client_metadata", "redirect_uris span several hosts (a.example.gov.cn, b.example.gov.cn); "
                 "a pairwise client needs a sector_identifier_uri", id="pairwise-hosts"),
    pytest.param({"sector_identifier_uri": "http://sector.example.gov.cn/s.json"}, "invalid_client_metadata",
                 "sector_identifier_uri 'http://sector.example.gov.cn/s.json' must use https (http only on loopback)",
                 id="sector-http"),
    pytest.param({"logo_uri": "http://cdn.example.gov.cn/logo.png"}, "invalid_client_metadata",
                 "logo_uri 'http://cdn.example.gov.cn/logo.png' must use https (http only on loopback)", id="logo-http"),
    pytest.param({"tos_uri": "javascript:alert(1)"}, "invalid_client_metadata",
                 "tos_uri 'javascript:alert(1)' must be an absolute http(s) URI without a fragment", id="tos-script"),
    pytest.param({"scope": "openid address"}, "invalid_client_metadata",
                 f"scope 'address' is not supported (supported: {' '.join(SUPPORTED_SCOPES)})", id="scope"),
    pytest.param({"contacts": ["call me"]}, "invalid_client_metadata", "contacts 'call me' is not an e-mail address",
                 id="contacts"),
    pytest.param({"client_name": ""}, "invalid_client_metadata", "client_name must be a non-empty string", id="name"),
    pytest.param({"backchannel_logout_session_required": "yes"}, "invalid_client_metadata",
                 "backchannel_logout_session_required must be true or false", id="not-a-boolean"),
    pytest.param({"backchannel_logout_uri": "https://10.1.2.3/logout"}, "invalid_client_metadata",
                 "backchannel_logout_uri 'https://10.1.2.3/logout' points to a private address (10.1.2.3), which "
                 "this provider does not call", id="backchannel-private"),
    pytest.param({"backchannel_logout_uri": "http://127.0.0.1:9/logout"}, "invalid_client_metadata",
                 "backchannel_logout_uri 'http://127.0.0.1:9/logout' points to a loopback address (127.0.0.1), which "
                 "this provider does not call", id="backchannel-loopback"),
    pytest.param({"backchannel_logout_uri": "https://169.254.169.254/latest"}, "invalid_client_metadata",
                 "backchannel_logout_uri 'https://169.254.169.254/latest' points to a private address "
                 "(169.254.169.254), which this provider does not call", id="backchannel-metadata-service"),
    pytest.param({"frontchannel_logout_uri": "https://elsewhere.example.gov.cn/fc"}, "invalid_client_metadata",
                 "frontchannel_logout_uri 'https://elsewhere.example.gov.cn/fc' must have the scheme, host and port of "
                 "a redirect_uri", id="frontchannel-origin"),
]


@pytest.mark.parametrize(("change", "error", "description"), REFUSALS)
def test_bad_metadata_is_refused_with_its_error_and_no_client_is_written(
        provider: Provider, open_at: str, change: dict[str, Any], error: str, description: str) -> None:
    before = _clients(provider)
    response = register(provider.url, _metadata(**change), at=open_at)
    assert response.status_code == 400 and response.headers["cache-control"] == "no-store"
    assert response.json() == {"error": error, "error_description": description}
    assert _clients(provider) == before


def test_a_body_that_is_not_a_json_object_is_refused(open_at: str) -> None:
    for content, ctype in ((b"client_name=x", "application/x-www-form-urlencoded"), (b"[1]", "application/json"),
                           (b"{", "application/json"), (b"[" * 6000 + b"]" * 6000, "application/json")):
        response = httpx.post(open_at + "/register", content=content, headers={"Content-Type": ctype})
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_client_metadata", "error_description":
                                   "the request body must be a JSON object sent as application/json"}


def test_unknown_metadata_is_ignored_and_not_echoed(provider: Provider, open_at: str) -> None:
    response = register(provider.url, _metadata(software_flavour="vanilla", default_max_age=10), at=open_at)
    assert response.status_code == 201
    assert "software_flavour" not in response.json() and "default_max_age" not in response.json()


def test_a_native_app_registers_a_private_use_scheme_and_a_loopback_redirect_with_any_port(
        provider: Provider, open_at: str) -> None:
    response = register(provider.url, {"application_type": "native", "token_endpoint_auth_method": "none",
                                       "redirect_uris": ["http://127.0.0.1/cb", "cn.gov.example.app:/cb"]}, at=open_at)
    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json()
    client = provider.core.clients.get(response.json()["client_id"])
    assert client is not None and client.check_redirect_uri("http://127.0.0.1:53124/cb")  # RFC 8252 §7.3
    assert not client.check_redirect_uri("http://127.0.0.1:53124/other")


def test_public_subjects_need_an_initial_access_token_that_allows_them(provider: Provider, person: Person) -> None:
    token, _ = iat.issue(provider.core.engine, allow_public_subject=True)
    response = register(provider.url, _metadata(subject_type="public"), token=token)
    assert response.status_code == 201 and response.json()["subject_type"] == "public"
    tokens, nonce = tokens_after_login(registered_rp(provider.url, response), person.username, person.password)
    assert registered_rp(provider.url, response).validate_id_token(tokens["id_token"], nonce)["sub"] == person.id


# -- sector_identifier_uri (OIDC Core §8.1) -----------------------------------------------------------
@pytest.fixture
def fetching_at(another_worker: WorkerFactory) -> str:
    """A worker whose egress filter lets it fetch from the loopback document server."""
    return another_worker(registration="open", egress_allow=LOOPBACK)


def _sub(provider: Provider, response: httpx.Response, person: Person) -> str:
    rp = registered_rp(provider.url, response)
    tokens, nonce = tokens_after_login(rp, person.username, person.password)
    return str(rp.validate_id_token(tokens["id_token"], nonce)["sub"])


def test_clients_of_one_sector_share_a_pairwise_subject_and_others_do_not(
        provider: Provider, fetching_at: str, documents: Documents, person: Person) -> None:
    first, second = f"https://{_host()}/cb", f"https://{_host()}/cb"
    sector = documents.publish([first, second])
    a = register(provider.url, _metadata(redirect_uris=[first], sector_identifier_uri=sector), at=fetching_at)
    b = register(provider.url, _metadata(redirect_uris=[second], sector_identifier_uri=sector), at=fetching_at)
    alone = register(provider.url, _metadata(redirect_uris=[first]), at=fetching_at)
    assert a.json()["sector_identifier_uri"] == sector
    assert _sub(provider, a, person) == _sub(provider, b, person) != _sub(provider, alone, person)


def test_a_sector_document_lets_a_pairwise_client_use_several_hosts(provider: Provider, fetching_at: str,
                                                                      documents: Documents) -> None:
    uris = [f"https://{_host()}/cb", f"https://{_host()}/cb"]
    response = register(provider.url, _metadata(redirect_uris=uris, sector_identifier_uri=documents.publish(uris)),
                        at=fetching_at)
    assert response.status_code == 201 and response.json()["redirect_uris"] == uris


@pytest.mark.parametrize(("document", "status", "problem"), [
    pytest.param(["https://other.example.gov.cn/cb"], 200, "does not list redirect_uri {redirect!r}", id="missing"),
    pytest.param({"redirect_uris": []}, 200, "must hold a JSON array of URIs", id="not-an-array"),
    pytest.param(b"<html>", 200, "is not JSON", id="not-json"),
    pytest.param([], 404, "answered HTTP 404, not 200", id="not-found"),
    pytest.param([["x" * 100] * 1000], 200, "is larger than 65536 bytes", id="too-large"),
])
def test_a_bad_sector_document_is_refused(provider: Provider, fetching_at: str, documents: Documents,
                                          document: object, status: int, problem: str) -> None:
    redirect = f"https://{_host()}/cb"
    sector = documents.publish(document, status)
    response = register(provider.url, _metadata(redirect_uris=[redirect], sector_identifier_uri=sector), at=fetching_at)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client_metadata",
                               "error_description": f"sector_identifier_uri {sector!r} " + problem.format(redirect=redirect)}


def test_a_slow_sector_document_is_refused(provider: Provider, fetching_at: str, documents: Documents) -> None:
    sector = documents.publish([], delay=4)
    response = register(provider.url, _metadata(sector_identifier_uri=sector), at=fetching_at)
    assert response.json()["error_description"] == f"sector_identifier_uri {sector!r} did not answer within 3 s"


def test_the_egress_filter_keeps_sector_fetches_off_loopback(provider: Provider, open_at: str,
                                                             documents: Documents) -> None:
    sector = documents.publish([])
    response = register(provider.url, _metadata(sector_identifier_uri=sector), at=open_at)
    assert response.status_code == 400
    assert response.json()["error_description"] == (f"sector_identifier_uri {sector!r} points to a loopback address "
                                                     "(127.0.0.1), which this provider does not call")


def test_the_demo_allows_loopback_back_channel_logout(provider: Provider, another_worker: WorkerFactory) -> None:
    demo = another_worker(registration="open", demo=True)
    response = register(provider.url, _metadata(backchannel_logout_uri="http://127.0.0.1:9/logout"), at=demo)
    assert response.status_code == 201 and response.json()["backchannel_logout_uri"] == "http://127.0.0.1:9/logout"


# -- the consent page (OIDC Registration §2: logo_uri, policy_uri, tos_uri) ------------------------------
def test_the_consent_page_shows_the_logo_and_the_policy_and_terms_links(provider: Provider, open_at: str,
                                                                        person: Person) -> None:
    response = register(provider.url, _metadata(logo_uri="https://cdn.example.gov.cn/logo.png",
                                                policy_uri="https://rp.example.gov.cn/privacy",
                                                tos_uri="https://rp.example.gov.cn/terms"), at=open_at)
    rp = registered_rp(provider.url, response)
    browser = Browser()
    try:
        page = browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri,
                             consent=None)
    finally:
        browser.close()
    assert '<img src="https://cdn.example.gov.cn/logo.png"' in page.text
    assert 'href="https://rp.example.gov.cn/privacy"' in page.text and 'href="https://rp.example.gov.cn/terms"' in page.text
    assert "img-src 'self' data: https://cdn.example.gov.cn;" in page.headers["content-security-policy"]


# -- management (RFC 7592) -------------------------------------------------------------------------------
def _manage(response: httpx.Response) -> tuple[str, dict[str, str], dict[str, Any]]:
    body = response.json()
    return body["registration_client_uri"], {"Authorization": f"Bearer {body['registration_access_token']}"}, body


def test_a_client_reads_its_registration_with_its_registration_access_token(provider: Provider, open_at: str) -> None:
    uri, auth, body = _manage(register(provider.url, _metadata(), at=open_at))
    read = httpx.get(uri, headers=auth)
    assert read.status_code == 200 and read.headers["cache-control"] == "no-store"
    assert read.json()["client_id"] == body["client_id"] and read.json()["redirect_uris"] == body["redirect_uris"]
    assert "client_secret" not in read.json() and "registration_access_token" not in read.json()


def test_a_wrong_registration_access_token_or_another_clients_gets_invalid_token(provider: Provider,
                                                                                 open_at: str) -> None:
    uri, _auth, _ = _manage(register(provider.url, _metadata(), at=open_at))
    _other_uri, other_auth, _ = _manage(register(provider.url, _metadata(), at=open_at))
    for headers in ({}, {"Authorization": "Bearer nope"}, other_auth):
        response = httpx.get(uri, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert response.json() == {"error": "invalid_token",
                                   "error_description": "the registration access token is not valid for this client"}


def test_an_administrators_client_cannot_be_managed(provider: Provider) -> None:
    client, _ = provider.core.clients.create(name="city app", redirect_uris=[f"https://{_host()}/cb"])
    assert httpx.get(f"{provider.url}/register/{client.client_id}", headers={"Authorization": "Bearer x"}).status_code == 401


def test_an_update_replaces_the_metadata_and_the_new_redirect_uri_works(provider: Provider, open_at: str,
                                                                        person: Person) -> None:
    registration = register(provider.url, _metadata(logo_uri="https://cdn.example.gov.cn/a.png"), at=open_at)
    uri, auth, body = _manage(registration)
    new_redirect = body["redirect_uris"][0].replace("/cb", "/callback")
    updated = httpx.put(uri, headers=auth, json={"client_id": body["client_id"], "client_name": "新名字 New name",
                                                 "redirect_uris": [new_redirect]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["client_name"] == "新名字 New name" and updated.json()["redirect_uris"] == [new_redirect]
    assert "logo_uri" not in updated.json()  # left out, so removed (RFC 7592 §2.2)
    rp = registered_rp(provider.url, registration)
    rp.redirect_uri = new_redirect
    tokens, nonce = tokens_after_login(rp, person.username, person.password)
    assert rp.validate_id_token(tokens["id_token"], nonce)["aud"] == body["client_id"]


@pytest.mark.parametrize(("change", "description"), [
    pytest.param({"client_id": None}, "client_id must be present and equal the client's own", id="no-client-id"),
    pytest.param({"registration_access_token": "x"}, "registration_access_token is assigned by the server and must "
                 "not be sent", id="server-field"),
    pytest.param({"client_secret": "guess"}, "client_secret does not match the issued secret", id="secret"),
    pytest.param({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method cannot change between a public "
                 "and a confidential client; register a new client", id="becomes-public"),
    pytest.param({"redirect_uris": ["https://elsewhere.example.gov.cn/cb"]}, "the pairwise sector would change from "
                 "{host!r} to 'elsewhere.example.gov.cn', and with it every subject identifier; register a "
                 "sector_identifier_uri listing the new redirect URIs", id="sector-change"),
])
def test_a_bad_update_is_refused_and_changes_nothing(provider: Provider, open_at: str, change: dict[str, Any],
                                                     description: str) -> None:
    uri, auth, body = _manage(register(provider.url, _metadata(), at=open_at))
    request = {k: v for k, v in ({**body, **change}).items()
               if k not in ("registration_access_token", "registration_client_uri", "client_secret",
                            "client_secret_expires_at", "client_id_issued_at") or k in change}
    response = httpx.put(uri, headers=auth, json={k: v for k, v in request.items() if v is not None})
    host = body["redirect_uris"][0].split("/")[2]
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client_metadata", "error_description": description.format(host=host)}
    assert httpx.get(uri, headers=auth).json() == {k: v for k, v in body.items()
                                                   if k not in ("registration_access_token", "client_secret",
                                                                "client_secret_expires_at")}


def test_a_deleted_client_can_neither_be_read_nor_used(provider: Provider, open_at: str, person: Person) -> None:
    registration = register(provider.url, _metadata(), at=open_at)
    uri, auth, body = _manage(registration)
    tokens, _nonce = tokens_after_login(registered_rp(provider.url, registration), person.username, person.password)
    assert httpx.delete(uri, headers=auth).status_code == 204
    gone = registered_rp(provider.url, registration).userinfo(tokens["access_token"])
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_token"
    assert httpx.get(uri, headers=auth).status_code == 401
    assert provider.core.clients.get(body["client_id"]) is None
    rp = registered_rp(provider.url, registration)
    token = httpx.post(rp.metadata["token_endpoint"], data={"grant_type": "authorization_code", "code": "x",
                                                             "redirect_uri": rp.redirect_uri},
                       auth=(rp.client_id, body["client_secret"]))
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"
    page = httpx.get(rp.authorization().url)
    assert page.status_code == 400 and "client_id is not registered" in page.text


def test_yihao_clients_iat_prints_a_token_that_registers_as_many_clients_as_it_allows(provider: Provider) -> None:
    settings = provider.core.settings
    env = {"YIHAO_DATABASE_URL": settings.database_url, "YIHAO_MASTER_KEY": settings.master_key,
           "YIHAO_VAR_DIR": str(settings.var_dir), "YIHAO_LOG_LEVEL": "WARNING"}
    result = yihao(env, "clients", "iat", "--uses", "2", "--ttl", "600", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["uses"] == 2 and printed["expires_at"] > datetime.now(timezone.utc).isoformat()
    token = printed["initial_access_token"]
    assert [register(provider.url, _metadata(), token=token).status_code for _ in range(3)] == [201, 201, 401]
    refused = yihao(env, "clients", "iat", "--uses", "0")
    assert refused.returncode == 1 and refused.stderr.strip() == "yihao: --uses and --ttl must be at least 1"


def test_a_self_registered_back_channel_uri_is_checked_again_at_delivery(provider: Provider,
                                                                         another_worker: WorkerFactory) -> None:
    """Registered where loopback was allowed (the demo), delivered by a worker where it is not: refused
    before any connection; an administrator's client with the same URI is simply tried."""
    uri = f"http://127.0.0.1:{free_port()}/logout"
    registered = register(provider.url, _metadata(backchannel_logout_uri=uri), at=another_worker(registration="open", demo=True))
    admins, _ = provider.core.clients.create(name="city app", redirect_uris=[f"https://{_host()}/cb"],
                                             backchannel_logout_uri=uri)
    rows = [LogoutDelivery(client_id=client_id, uri=uri, sub="s", sid="x", jti=uuid.uuid4().hex)
            for client_id in (registered.json()["client_id"], admins.client_id)]
    ids = [row.id for row in rows]
    with Session(provider.core.engine) as session, session.begin():
        session.add_all(rows)
    outbox = Outbox(provider.core)
    try:
        outbox.deliver_due()
    finally:
        outbox.close()
    with Session(provider.core.engine) as session:
        errors = [session.get(LogoutDelivery, row_id).last_error for row_id in ids]  # type: ignore[union-attr]
    assert errors == [f"backchannel_logout_uri {uri!r} points to a loopback address (127.0.0.1), which this "
                      "provider does not call", "ConnectError"]
