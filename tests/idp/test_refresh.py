"""Refresh tokens as a relying party uses them: rotation, reuse detection, sessions, concurrency."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import text

from idp import events
from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.rp import Browser, RelyingParty, callback_params, introspect, refresh, tokens_after_login

REFRESHING = ["authorization_code", "refresh_token"]


def offline_rp(make_rp: RpFactory, **metadata: Any) -> RelyingParty:
    rp = make_rp(first_party=True, grant_types=REFRESHING, scope="openid profile email offline_access", **metadata)
    rp.scope = "openid profile offline_access"
    return rp


def refused(rp: RelyingParty, token: str, at: str | None = None) -> str:
    with pytest.raises(OAuthError) as raised:
        refresh(rp, token, at=at)
    assert raised.value.error == "invalid_grant"
    return str(raised.value.description)


def test_offline_access_gives_a_refresh_token_that_rotates(make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, nonce = tokens_after_login(rp, person.username, person.password)
    original = rp.validate_id_token(first["id_token"], nonce)
    second = refresh(rp, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "openid profile offline_access"
    # OIDC Core §12.2: the same person, login time and session; no nonce in a refreshed ID token
    renewed = _id_token_claims(rp, second)
    assert (renewed["sub"], renewed["auth_time"], renewed["sid"]) == (original["sub"], original["auth_time"],
                                                                      original["sid"])
    assert "nonce" not in renewed
    assert rp.userinfo(second["access_token"]).json()["sub"] == original["sub"]
    third = refresh(rp, second["refresh_token"])
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


def _id_token_claims(rp: RelyingParty, token: dict[str, Any]) -> dict[str, Any]:
    from joserfc import jwt

    decoded = jwt.decode(token["id_token"], rp.jwks(), algorithms=["RS256", "ES256", "EdDSA"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": rp.issuer}, aud={"essential": True, "value": rp.client_id},
                          exp={"essential": True}).validate(decoded.claims)
    return dict(decoded.claims)


def test_no_refresh_token_without_offline_access_or_the_grant_type(make_rp: RpFactory, person: Person) -> None:
    plain = make_rp(first_party=True, grant_types=REFRESHING)
    assert "refresh_token" not in tokens_after_login(plain, person.username, person.password)[0]
    no_grant = make_rp(first_party=True, scope="openid profile offline_access")
    no_grant.scope = "openid offline_access"
    assert "refresh_token" not in tokens_after_login(no_grant, person.username, person.password)[0]


def test_reuse_after_rotation_revokes_the_whole_family(provider: Provider, make_rp: RpFactory,
                                                       person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    second = refresh(rp, first["refresh_token"])
    third = refresh(rp, second["refresh_token"])  # a successor was used: the first is dead for good
    assert "already used" in refused(rp, first["refresh_token"])
    # the newest refresh token and the access tokens of the family stop working too
    assert refused(rp, third["refresh_token"]) == "the refresh token is invalid, expired or revoked"
    for token in (first, second, third):
        assert rp.userinfo(token["access_token"]).status_code == 401
    assert introspect(rp, third["access_token"]).json() == {"active": False}
    events.flush()
    with provider.core.engine.connect() as conn:
        reused = conn.execute(text("SELECT count(*) FROM audit_event WHERE event = 'refresh_token.reused' "
                                   "AND client_id = :c"), {"c": rp.client_id}).scalar()
    assert reused == 1


def test_a_concurrent_double_refresh_within_the_grace_gets_two_working_tokens(make_rp: RpFactory,
                                                                              person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: refresh(rp, first["refresh_token"]), range(2)))
    a, b = (r["refresh_token"] for r in results)
    assert a != b
    assert refresh(rp, a)["refresh_token"]
    # a successor has now been used: presenting the original again is reuse, and the family ends
    assert "already used" in refused(rp, first["refresh_token"])
    assert refused(rp, b) == "the refresh token is invalid, expired or revoked"


def test_without_a_grace_the_second_use_is_refused_and_revokes(make_rp: RpFactory, person: Person,
                                                               another_worker: WorkerFactory) -> None:
    strict = another_worker(refresh_reuse_grace=0)
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    second = refresh(rp, first["refresh_token"], at=strict)
    assert "already used" in refused(rp, first["refresh_token"], at=strict)
    assert refused(rp, second["refresh_token"], at=strict) == "the refresh token is invalid, expired or revoked"


def test_a_refresh_token_is_bound_to_its_client(make_rp: RpFactory, person: Person) -> None:
    rp, other = offline_rp(make_rp), offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    assert refused(other, first["refresh_token"]) == "the refresh token is invalid, expired or revoked"
    assert refresh(rp, first["refresh_token"])["access_token"]  # the failed attempt spent nothing


def test_a_narrower_scope_may_be_asked_for_but_not_a_wider_one(make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    with pytest.raises(OAuthError) as raised:
        refresh(rp, first["refresh_token"], scope="openid profile email offline_access")
    assert raised.value.error == "invalid_scope"
    narrower = refresh(rp, first["refresh_token"], scope="openid")  # the refused request spent nothing
    assert narrower["scope"] == "openid"
    # the family keeps its original scope
    assert refresh(rp, narrower["refresh_token"])["scope"] == "openid profile offline_access"


def test_session_bound_refresh_tokens_end_with_the_session(provider: Provider, make_rp: RpFactory, person: Person,
                                                           browser: Browser) -> None:
    rp = make_rp(first_party=True, grant_types=REFRESHING, session_refresh_tokens=True)
    offline = offline_rp(make_rp)
    tokens = {}
    for client in (rp, offline):
        auth = client.authorization()
        params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=client.redirect_uri))
        tokens[client.client_id] = client.fetch_token(params["code"], auth.verifier)
    bound = tokens[rp.client_id]
    assert "offline_access" not in bound["scope"]
    bound = refresh(rp, bound["refresh_token"])  # alive while the session is
    # the same person signing in again (prompt=login) continues the session: same sid, tokens live on
    again = browser.login(rp.authorization(prompt="login").url, person.username, person.password,
                          stop_at=rp.redirect_uri)
    assert "code" in callback_params(again)
    bound = refresh(rp, bound["refresh_token"])
    assert _id_token_claims(rp, bound)["sid"] == _id_token_claims(rp, tokens[rp.client_id])["sid"]
    # another person signing in on this browser ends the session, and the session-bound family with it
    other = provider.core.accounts.create(f"q{uuid.uuid4().hex[:10]}", "another good password")
    browser.login(rp.authorization(prompt="login").url, other.username, "another good password",
                  stop_at=rp.redirect_uri)
    assert refused(rp, bound["refresh_token"]) == "the refresh token is invalid, expired or revoked"
    assert rp.userinfo(bound["access_token"]).status_code == 401
    assert refresh(offline, tokens[offline.client_id]["refresh_token"])["access_token"]  # offline lives on


def test_an_idle_refresh_token_expires(provider: Provider, make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    with provider.core.engine.begin() as conn:  # the idle lifetime passes
        conn.execute(text("UPDATE refresh_token SET expires_at = :t WHERE client_id = :c"),
                     {"t": "2000-01-01 00:00:00+00:00", "c": rp.client_id})
    assert refused(rp, first["refresh_token"]) == "the refresh token is invalid, expired or revoked"
    assert introspect(rp, first["refresh_token"]).json() == {"active": False}


def test_public_clients_refresh_with_their_client_id(make_rp: RpFactory, person: Person) -> None:
    rp = make_rp(public=True, first_party=True, grant_types=REFRESHING, scope="openid offline_access")
    rp.scope = "openid offline_access"
    first, _ = tokens_after_login(rp, person.username, person.password)
    assert refresh(rp, first["refresh_token"])["refresh_token"] != first["refresh_token"]


def test_a_missing_or_unknown_refresh_token_is_refused(make_rp: RpFactory) -> None:
    rp = offline_rp(make_rp)
    import httpx

    missing = httpx.post(rp.metadata["token_endpoint"], data={"grant_type": "refresh_token"},
                         auth=(rp.client_id, rp.client_secret or ""))
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request", "error_description": "refresh_token is required"}
    assert refused(rp, "not-a-token") == "the refresh token is invalid, expired or revoked"


def test_racing_refreshes_have_a_single_winner(make_rp: RpFactory, person: Person,
                                               another_worker: WorkerFactory) -> None:
    strict = another_worker(refresh_reuse_grace=0)
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)

    def attempt(_: int) -> str | None:
        try:
            return str(refresh(rp, first["refresh_token"], at=strict)["refresh_token"])
        except OAuthError:
            return None

    with ThreadPoolExecutor(8) as pool:
        winners = [token for token in pool.map(attempt, range(8)) if token is not None]
    assert len(winners) == 1  # the conditional UPDATE lets exactly one through; the rest are reuse
    for token in winners:  # and reuse revoked the family, the winner's successor included
        assert refused(rp, token, at=strict) == "the refresh token is invalid, expired or revoked"


def test_a_grace_sibling_dies_once_its_twin_is_used(make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    mine = refresh(rp, first["refresh_token"])
    stolen = refresh(rp, first["refresh_token"])  # a replay within the grace looks like a double refresh
    refresh(rp, mine["refresh_token"])  # the client carries on
    # the replayed branch is now reuse: it does not rotate on, and the family ends
    assert "already used" in refused(rp, stolen["refresh_token"])
    assert refused(rp, mine["refresh_token"]) == "the refresh token is invalid, expired or revoked"


def test_a_token_gets_one_grace_sibling_at_most(make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    refresh(rp, first["refresh_token"])
    refresh(rp, first["refresh_token"])
    assert "already used" in refused(rp, first["refresh_token"])


def test_a_dead_grace_sibling_introspects_as_inactive(make_rp: RpFactory, person: Person) -> None:
    rp = offline_rp(make_rp)
    first, _ = tokens_after_login(rp, person.username, person.password)
    mine = refresh(rp, first["refresh_token"])
    stolen = refresh(rp, first["refresh_token"])
    refresh(rp, mine["refresh_token"])  # the twin was used: the sibling is dead
    # RFC 7662 §2.2: introspection agrees with the token endpoint, which refuses it
    assert introspect(rp, stolen["refresh_token"]).json() == {"active": False}
    assert "already used" in refused(rp, stolen["refresh_token"])


def _new_family(rp: RelyingParty, person: Person, browser: Browser) -> str:
    """The refresh token of a new family; once the browser has a session, no password is asked again."""
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    return str(rp.fetch_token(params["code"], auth.verifier)["refresh_token"])


def _winners_at_once(rp: RelyingParty, tokens: list[str]) -> int:
    """How many of `tokens`, presented at the same moment, were refreshed."""
    barrier = threading.Barrier(len(tokens))

    def spend(token: str) -> bool:
        with rp.oauth() as client:
            barrier.wait()
            try:
                client.refresh_token(rp.metadata["token_endpoint"], refresh_token=token)
            except OAuthError:
                return False
        return True

    with ThreadPoolExecutor(len(tokens)) as pool:
        return sum(pool.map(spend, tokens))


def test_grace_twins_spent_at_once_have_a_single_winner(make_rp: RpFactory, person: Person,
                                                        browser: Browser) -> None:
    rp = offline_rp(make_rp)
    for _ in range(6):  # who wins a race is chance: several families
        first = _new_family(rp, person, browser)
        twins = [refresh(rp, first)["refresh_token"] for _ in range(2)]
        # RFC 9700 §4.14.2: two branches of one family living on would hide a theft for good
        assert _winners_at_once(rp, twins) == 1


def test_a_double_refresh_at_the_same_moment_within_the_grace_gives_both_a_token(make_rp: RpFactory, person: Person,
                                                                                 browser: Browser) -> None:
    rp = offline_rp(make_rp)
    for _ in range(3):  # whichever spends it first, the other gets a sibling
        first = _new_family(rp, person, browser)
        assert _winners_at_once(rp, [first, first]) == 2


def test_two_late_uses_at_once_get_one_grace_sibling_at_most(make_rp: RpFactory, person: Person,
                                                             browser: Browser) -> None:
    rp = offline_rp(make_rp)
    for _ in range(3):
        first = _new_family(rp, person, browser)
        refresh(rp, first)
        assert _winners_at_once(rp, [first, first]) == 1  # a sibling, then reuse


LONG_RESOURCES = [f"https://api-{i}.example.gov.cn/" + "v" * 90 for i in range(3)]


def test_a_grant_of_several_long_resources_refreshes(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = offline_rp(make_rp, resources=LONG_RESOURCES)
    auth = rp.authorization()
    url = auth.url + "".join("&resource=" + quote(uri, safe="") for uri in LONG_RESOURCES)
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    first = rp.fetch_token(params["code"], auth.verifier)  # RFC 8707: every resource of the grant is kept
    last = refresh(rp, first["refresh_token"], resource=LONG_RESOURCES[2])
    assert introspect(rp, last["access_token"]).json()["aud"] == LONG_RESOURCES[2]
