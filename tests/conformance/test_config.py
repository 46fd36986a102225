"""The Config OP certification plan (oidcc-config-certification-test-plan): discovery."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from tests.conformance.conftest import Suite, conformance

LOCALE = re.compile(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-[0-9]{3})?")  # BCP 47, canonical casing


@conformance("oidcc-discovery-endpoint-verification")
def test_oidcc_discovery_endpoint_verification(suite: Suite) -> None:
    response = httpx.get(suite.op.url + "/.well-known/openid-configuration")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    meta = response.json()
    assert meta["issuer"] == suite.op.url and not meta["issuer"].endswith("/")  # OIDCD-4.3
    assert "code" in meta["response_types_supported"] and "authorization_code" in meta["grant_types_supported"]
    assert set(meta["subject_types_supported"]) <= {"public", "pairwise"} and meta["subject_types_supported"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert "none" not in meta["userinfo_signing_alg_values_supported"]
    # every endpoint lives under the issuer, on its scheme (https in production; loopback http here)
    for name, value in meta.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert urlsplit(value).scheme == urlsplit(suite.op.url).scheme and value.startswith(suite.op.url), name
    assert "openid" in meta["scopes_supported"] and all(" " not in s for s in meta["scopes_supported"])
    assert isinstance(meta["claims_parameter_supported"], bool) and "sub" in meta["claims_supported"]
    assert isinstance(meta["request_parameter_supported"], bool)
    assert isinstance(meta["request_uri_parameter_supported"], bool)
    assert isinstance(meta["code_challenge_methods_supported"], list)
    for locale in meta["ui_locales_supported"] + meta["claims_locales_supported"]:
        assert LOCALE.fullmatch(locale), locale
    keys = httpx.get(meta["jwks_uri"]).json()["keys"]
    kids = [key["kid"] for key in keys]
    assert len(kids) == len(set(kids)) and all(key["kty"] in ("RSA", "EC", "OKP") for key in keys)  # no "oct"
    assert not any(private in key for key in keys for private in ("d", "p", "q", "dp", "dq", "qi", "k"))
