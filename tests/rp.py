"""A real relying party (authlib's OAuth client + joserfc) and a cookie-keeping browser stand-in.

The RP validates ID tokens as a relying party must: signature against the published JWKS, then
iss, aud, exp, iat, nonce and at_hash.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import warnings
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urljoin, urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client

from authlib.common.security import generate_token
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT, client_secret_jwt_sign, private_key_jwt_sign
from joserfc.jwk import OctKey


class PrivateKeyAssertion(PrivateKeyJWT):
    """authlib's private_key_jwt, its assertions valid for one minute (authlib's default is an hour;
    the provider accepts at most five minutes). `aud` is the URL called."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                                    alg=self.alg, header=dict(self.headers or {}), expires_in=60)


class SecretAssertion(ClientSecretJWT):
    """authlib's client_secret_jwt (HS256), valid for one minute."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return client_secret_jwt_sign(OctKey.import_key(auth.client_secret), client_id=auth.client_id,
                                      token_endpoint=token_endpoint, alg=self.alg, expires_in=60)


@dataclass
class AuthRequest:
    url: str
    state: str
    nonce: str
    verifier: str | None


@dataclass
class RelyingParty:
    issuer: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    scope: str = "openid profile email phone"
    metadata: dict[str, Any] = field(default_factory=dict)
    assertion: ClientSecretJWT | None = None  # private_key_jwt / client_secret_jwt instead of the secret
    key: Any = None  # the private key that signs private_key_jwt assertions

    def __post_init__(self) -> None:
        self.metadata = httpx.get(self.issuer + "/.well-known/openid-configuration").json()

    def oauth(self, **kwargs: Any) -> OAuth2Client:
        if self.assertion is not None:
            secret = self.key if self.assertion.name == "private_key_jwt" else self.client_secret
            client = OAuth2Client(self.client_id, secret, scope=self.scope, redirect_uri=self.redirect_uri,
                                  token_endpoint_auth_method=self.assertion.name,
                                  revocation_endpoint_auth_method=self.assertion.name, code_challenge_method="S256",
                                  **kwargs)
            client.register_client_auth_method(self.assertion)
            return client
        method = "none" if self.client_secret is None else "client_secret_basic"
        return OAuth2Client(self.client_id, self.client_secret, scope=self.scope, redirect_uri=self.redirect_uri,
                            token_endpoint_auth_method=method, code_challenge_method="S256", **kwargs)

    def authorization(self, pkce: bool = True, **params: str) -> AuthRequest:
        nonce = generate_token(20)
        verifier = generate_token(48) if pkce else None
        with self.oauth() as client:
            extra = {"code_verifier": verifier} if verifier else {}
            url, state = client.create_authorization_url(self.metadata["authorization_endpoint"], nonce=nonce,
                                                         **extra, **params)
        return AuthRequest(url, state, nonce, verifier)

    def signed_authorization(self, **params: str) -> tuple[AuthRequest, dict[str, str], str]:
        """An authorization request, its parameters and those parameters as a request object signed with
        the client's key (RFC 9101 §4: iss the client, aud the issuer, short-lived)."""
        auth = self.authorization(**params)
        query = dict(parse_qsl(urlsplit(auth.url).query))
        return auth, query, self.request_object(query)

    def request_object(self, claims: dict[str, Any], alg: str | None = None, key: Any = None) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "aud": self.issuer, "iat": now, "nbf": now, "exp": now + 60,
                "jti": generate_token(16)} | claims
        key = key or self.key
        alg = alg or (self.assertion.alg if self.assertion else "ES256")
        header = {"alg": alg, "kid": key.kid} if key.kid else {"alg": alg}
        return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])

    def push(self, **params: str) -> httpx.Response:
        """POST to the pushed authorization request endpoint (RFC 9126), authenticated as at /token."""
        with self.oauth() as client:
            return client.post(self.metadata["pushed_authorization_request_endpoint"], data=params,
                               auth=client.client_auth(client.token_endpoint_auth_method))

    def authorize_url(self, **params: str) -> str:
        return self.metadata["authorization_endpoint"] + "?" + urlencode(params)

    def exchange(self, code: str, verifier: str | None) -> httpx.Response:
        """The raw token response (client_secret_basic, or client_id in the body for public clients)."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if verifier:
            data["code_verifier"] = verifier
        if self.client_secret is None:
            data["client_id"] = self.client_id
            return httpx.post(self.metadata["token_endpoint"], data=data)
        return httpx.post(self.metadata["token_endpoint"], data=data, auth=(self.client_id, self.client_secret))

    def fetch_token(self, code: str, verifier: str | None) -> dict[str, Any]:
        """The token response through authlib's client, which raises on an OAuth error."""
        with self.oauth() as client:
            extra = {"code_verifier": verifier} if verifier else {}
            return dict(client.fetch_token(self.metadata["token_endpoint"], code=code,
                                           grant_type="authorization_code", **extra))

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(httpx.get(self.metadata["jwks_uri"]).json())

    def validate_id_token(self, id_token: str, nonce: str, access_token: str | None = None) -> dict[str, Any]:
        decoded = jwt.decode(id_token, self.jwks(), algorithms=self.metadata["id_token_signing_alg_values_supported"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer}, aud={"essential": True, "value": self.client_id},
            nonce={"essential": True, "value": nonce}, exp={"essential": True}, iat={"essential": True},
            sub={"essential": True}, auth_time={"essential": True},
        ).validate(decoded.claims)
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
            assert decoded.claims["at_hash"] == expected, "at_hash does not match the access token"
        return decoded.claims

    def validate_userinfo_jwt(self, body: str) -> dict[str, Any]:
        """A signed userinfo response (OIDC Core §5.3.2): signature against the JWKS, then iss and aud."""
        decoded = jwt.decode(body, self.jwks(), algorithms=self.metadata["userinfo_signing_alg_values_supported"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer}, aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
        ).validate(decoded.claims)
        return decoded.claims

    def userinfo(self, access_token: str) -> httpx.Response:
        return httpx.get(self.metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"})


class Browser:
    """Follows redirects by hand, keeps cookies, fills the login and consent forms like a person."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    def get(self, url: str) -> httpx.Response:
        return self.http.get(url)

    def follow(self, response: httpx.Response, stop_at: str) -> httpx.Response:
        """Follow redirects until one points at `stop_at` (the RP's redirect URI) or a page shows."""
        while response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(stop_at):
                return response
            response = self.http.get(location)
        return response

    def login(self, url: str, username: str, password: str, *, stop_at: str, consent: str | None = "approve") -> httpx.Response:
        page = self.follow(self.http.get(url), stop_at)
        if page.is_redirect:
            return page
        form = parse_form(page.text)
        assert form.get("action", "").endswith("/login"), f"expected the login page, got {page.status_code}"
        page = self.http.post(urljoin(str(page.url), form["action"]),
                              data={"csrf_token": form["csrf_token"], "username": username, "password": password})
        page = self.follow(page, stop_at)
        if page.is_redirect or consent is None:
            return page
        return self.consent(page, consent, stop_at)

    def consent(self, page: httpx.Response, action: str, stop_at: str) -> httpx.Response:
        form = parse_form(page.text)
        assert form.get("action", "").endswith("/consent"), f"expected the consent page, got {page.status_code}"
        response = self.http.post(urljoin(str(page.url), form["action"]),
                                  data={"csrf_token": form["csrf_token"], "action": action})
        return self.follow(response, stop_at)


def parse_form(html: str) -> dict[str, str]:
    """The first form's action and hidden inputs."""
    out: dict[str, str] = {}
    action = re.search(r'<form[^>]*action="([^"]*)"', html)
    if action:
        out["action"] = unescape(action.group(1))
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html):
        out[name] = unescape(value)
    return out


def callback_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect to the RP."""
    query = urlsplit(response.headers["location"]).query
    return {k: v[0] for k, v in parse_qs(query).items()}


def tokens_after_login(rp: RelyingParty, username: str, password: str) -> tuple[dict[str, Any], str]:
    """A fresh browser logs in through `rp`; returns the token response and the nonce it sent."""
    browser = Browser()
    try:
        auth = rp.authorization()
        params = callback_params(browser.login(auth.url, username, password, stop_at=rp.redirect_uri))
        return rp.fetch_token(params["code"], auth.verifier), auth.nonce
    finally:
        browser.close()



def _endpoint(rp: RelyingParty, name: str, path: str, at: str | None) -> str:
    """The endpoint as discovered, or the same path on another worker of the deployment."""
    return at + path if at else rp.metadata[name]


def refresh(rp: RelyingParty, refresh_token: str, at: str | None = None, **params: str) -> dict[str, Any]:
    """A refresh through authlib's client, which raises on an OAuth error."""
    with rp.oauth() as client:
        return dict(client.refresh_token(_endpoint(rp, "token_endpoint", "/token", at), refresh_token=refresh_token,
                                         **params))


def introspect(rp: RelyingParty, token: str, hint: str | None = None, at: str | None = None) -> httpx.Response:
    with rp.oauth() as client:
        return client.introspect_token(_endpoint(rp, "introspection_endpoint", "/introspect", at), token=token,
                                       token_type_hint=hint)


def revoke(rp: RelyingParty, token: str, hint: str | None = None, at: str | None = None) -> httpx.Response:
    with rp.oauth() as client:
        return client.revoke_token(_endpoint(rp, "revocation_endpoint", "/revoke", at), token=token,
                                   token_type_hint=hint)


def register(issuer: str, metadata: dict[str, Any], token: str | None = None, at: str | None = None) -> httpx.Response:
    """POST a registration request (RFC 7591 §3.1), to the discovered endpoint or the same path on `at`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    endpoint = (at + "/register") if at else httpx.get(issuer + "/.well-known/openid-configuration").json()["registration_endpoint"]
    return httpx.post(endpoint, json=metadata, headers=headers)


def registered_rp(issuer: str, response: httpx.Response, scope: str = "openid profile email phone") -> RelyingParty:
    """A relying party configured from a successful registration response."""
    assert response.status_code == 201, response.text
    body = response.json()
    return RelyingParty(issuer, body["client_id"], body.get("client_secret"), body["redirect_uris"][0], scope)


_KEYS = {"ES256": lambda: ECKey.generate_key("P-256"), "RS256": lambda: RSAKey.generate_key(2048),
         "PS256": lambda: RSAKey.generate_key(2048), "EdDSA": lambda: OKPKey.generate_key("Ed25519")}


class DPoPKey:
    """A client's DPoP key (RFC 9449): a fresh proof per request, the server's latest nonce remembered."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key = _KEYS[alg]()
        self.nonce: str | None = None

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(self, htm: str, htu: str, access_token: str | None = None, *, signer: Any = None,
              header: dict[str, Any] | None = None, **claims: Any) -> str:
        """A proof for one request; keyword claims override (None drops one), `signer` signs instead."""
        body: dict[str, Any] = {"jti": generate_token(22), "htm": htm, "htu": htu, "iat": int(time.time())}
        if access_token is not None:
            body["ath"] = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()
        if self.nonce:
            body["nonce"] = self.nonce
        body = {k: v for k, v in (body | claims).items() if v is not None}
        protected = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)} | (header or {})
        return jws.serialize_compact(protected, json.dumps(body), signer or self.key, algorithms=[self.alg])

    def _remember(self, response: httpx.Response) -> bool:
        """Keep the server's nonce; True when the response asks to retry with it."""
        if "dpop-nonce" in response.headers:
            self.nonce = response.headers["dpop-nonce"]
        if response.status_code == 400:
            return response.json().get("error") == "use_dpop_nonce"
        return response.status_code == 401 and 'error="use_dpop_nonce"' in response.headers.get("www-authenticate", "")

    def post(self, url: str, data: dict[str, str], auth: tuple[str, str] | None = None,
             htu: str | None = None) -> httpx.Response:
        """A token request with a proof, retried once with the server's nonce when it asks (RFC 9449 §8).
        `htu` is the endpoint as the issuer names it, when `url` reaches one worker of it directly."""
        for _ in range(2):
            response = httpx.post(url, data=data, auth=auth, headers={"DPoP": self.proof("POST", htu or url)})
            if not self._remember(response):
                break
        return response

    def get(self, url: str, access_token: str) -> httpx.Response:
        """A resource request: `Authorization: DPoP <token>` and a proof with `ath` (RFC 9449 §7.1)."""
        for _ in range(2):
            response = httpx.get(url, headers={"Authorization": f"DPoP {access_token}",
                                               "DPoP": self.proof("GET", url, access_token)})
            if not self._remember(response):
                break
        return response


def dpop_exchange(rp: RelyingParty, key: DPoPKey, code: str, verifier: str | None) -> httpx.Response:
    """The code exchange of `RelyingParty.exchange`, with DPoP proofs."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    data |= {"code_verifier": verifier} if verifier else {}
    if rp.client_secret is None:
        return key.post(rp.metadata["token_endpoint"], data | {"client_id": rp.client_id})
    return key.post(rp.metadata["token_endpoint"], data, auth=(rp.client_id, rp.client_secret))
