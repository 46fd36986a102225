"""Signing keys: published before use, rotated without a restart, old tokens valid until they expire."""
from __future__ import annotations

import httpx

from idp import jose
from idp.keys import KeyRing
from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import tokens_after_login


def _kids(provider: Provider) -> set[str]:
    return {key["kid"] for key in httpx.get(provider.url + "/jwks").json()["keys"]}


def test_jwks_publishes_public_parts_only(provider: Provider) -> None:
    keys = httpx.get(provider.url + "/jwks").json()["keys"]
    assert {key["alg"] for key in keys} == {"RS256", "ES256", "EdDSA"}
    assert not any(field in key for key in keys for field in ("d", "p", "q", "dp", "dq", "qi"))


def test_rotation_keeps_tokens_signed_by_the_old_key_valid(provider: Provider, make_rp: RpFactory,
                                                           person: Person) -> None:
    rp = make_rp(first_party=True)
    before, nonce = tokens_after_login(rp, person.username, person.password)
    old_kid = jose.header(before["id_token"])["kid"]
    published_before = _kids(provider)

    activated = provider.core.keys.rotate(retire_after=900)

    after, new_nonce = tokens_after_login(rp, person.username, person.password)
    new_kid = jose.header(after["id_token"])["kid"]
    assert new_kid != old_kid and new_kid in activated
    assert new_kid in published_before  # the next key was published before it signed anything
    assert old_kid in _kids(provider)  # the old key stays published while its tokens live
    rp.validate_id_token(before["id_token"], nonce, before["access_token"])
    rp.validate_id_token(after["id_token"], new_nonce, after["access_token"])
    assert rp.userinfo(before["access_token"]).status_code == 200


def test_a_retired_key_leaves_the_key_set_once_its_tokens_have_expired(provider: Provider) -> None:
    keys = provider.core.keys
    keys.rotate(retire_after=0)  # nothing signed by the retiring key may still be valid
    short_lived = keys.signing_key("ES256").get("kid")
    keys.rotate(retire_after=0)
    long_lived = keys.signing_key("ES256").get("kid")
    keys.rotate(retire_after=900)
    published = _kids(provider)
    assert short_lived not in published
    assert long_lived in published and keys.signing_key("ES256").get("kid") in published


def test_a_token_read_once_is_refused_once_its_key_leaves_the_key_set(provider: Provider, make_rp: RpFactory,
                                                                       person: Person) -> None:
    rp = make_rp(first_party=True)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    assert rp.userinfo(tokens["access_token"]).status_code == 200  # verified, and remembered by the worker
    signer = jose.header(tokens["access_token"])["kid"]
    provider.core.keys.rotate(retire_after=0)  # withdrawn at once, as after a key compromise
    assert signer not in _kids(provider)
    assert rp.userinfo(tokens["access_token"]).status_code == 401


def test_a_reload_keeps_the_key_objects_of_unchanged_keys(provider: Provider) -> None:
    # A key object is prepared for signing once (idp.jose); parsing an RSA private key again costs
    # tens of milliseconds on the thread that signs, so a periodic reload must hand back the same one.
    core = provider.core
    ring = KeyRing(core.engine, core.master, core.store, max_age=0.0)  # every read reloads
    signing, public = ring.signing_key("RS256"), ring.public_key(ring.signing_key("RS256").get("kid"))
    assert ring.signing_key("RS256") is signing
    assert ring.public_key(signing.get("kid")) is public

    core.keys.rotate(retire_after=900)  # as by another worker
    rotated = ring.signing_key("RS256")
    assert rotated.get("kid") != signing.get("kid")
    assert ring.public_key(signing.get("kid")) is public  # still published, still the same object
