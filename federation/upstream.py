"""Upstream providers: OpenID Connect ones registered by discovery, their keys, and their tokens checked;
plain OAuth 2 ones registered by their endpoints (federation.oauth2 reads their userinfo answers).

An OpenID Connect upstream is configured by its issuer; its metadata (OIDC Discovery) and key set are fetched
with a timeout and a size limit and cached per worker for a bounded time. A token whose `kid` is not
in the cached set triggers one refetch (key rotation upstream), at most once per `REFETCH_AFTER`
seconds, so a stream of forged kids cannot turn us into a load generator against the upstream.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import httpx
from jwcrypto import jwk
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from federation.models import Upstream
from federation.oauth2 import check_mapping
from federation.remote import UpstreamError, UpstreamInputError, check_url, fetch_json
from idp import jose
from idp.crypto import MasterKey, equal
from idp.store.ephemeral import EphemeralStore

__all__ = ["UpstreamConfig", "UpstreamError", "UpstreamInputError", "Upstreams", "check_claims", "check_url"]

ALGORITHMS = ("RS256", "ES256", "EdDSA", "PS256")
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
METADATA_TTL = 3600.0
JWKS_TTL = 300.0
REFETCH_AFTER = 30.0
LEEWAY = 60  # clock skew allowed between us and an upstream, seconds
MAX_AGE = 600  # an ID token issued longer ago than this is not accepted for a login
VERSION_KEY = "upstreams:version"
SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
OIDC, OAUTH2 = "oidc", "oauth2"
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# What a trust policy may name: the claims an upstream's word is believed for (never used to link but the ID number).
TRUSTABLE = ("id_number", "name", "email", "phone_number")
# The key type an algorithm needs, for key sets that leave `alg` out of their keys.
_KEY_ALG = {("RSA", None): "RS256", ("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA"}


@dataclass(frozen=True)
class UpstreamConfig:
    slug: str
    name: str
    issuer: str | None  # None for a plain OAuth 2 upstream: it signs nothing we could check
    client_id: str
    client_secret: str | None
    scope: str
    trusted_claims: frozenset[str]
    identity_level: int
    acr_map: dict[str, str]
    may_create: bool
    algorithms: tuple[str, ...]
    end_session: bool
    enabled: bool
    kind: str = OIDC
    authorization_endpoint: str | None = None  # oauth2; an OIDC upstream's come from its discovery
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    claim_map: dict[str, str] = field(default_factory=dict)  # oauth2: our claim -> dotted path in userinfo
    token_auth: str = "client_secret_basic"

    def trusted_for(self, claim: str) -> bool:
        return claim in self.trusted_claims


def _public_key(data: dict[str, Any]) -> jwk.JWK | None:
    """A verification key from a JWKS entry, with `alg` filled in where the key type says it."""
    if data.get("use", "sig") != "sig" or not isinstance(data.get("kid"), str):
        return None
    alg = data.get("alg") or _KEY_ALG.get((data.get("kty"), data.get("crv")))
    if alg not in ALGORITHMS:
        return None
    try:
        public = {k: v for k, v in data.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "alg")}
        key = jwk.JWK(**public, alg=alg)
    except Exception:  # jwcrypto raises several types for a malformed key; such a key is skipped
        return None
    return key


@dataclass
class _Cached:
    value: Any
    until: float
    fetched: float


class Upstreams:
    """The configured upstreams (SQL, cached per worker) and what is fetched from them."""

    def __init__(self, engine: Engine, master: MasterKey, store: EphemeralStore, *, timeout: float) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._aead = master.aead("upstream-client-secret")
        self._master_id = master.key_id
        self._store = store
        self.http = httpx.Client(timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._configs: tuple[bytes | None, float, dict[str, UpstreamConfig]] = (None, 0.0, {})
        self._metadata: dict[str, _Cached] = {}
        self._jwks: dict[str, _Cached] = {}

    def close(self) -> None:
        self.http.close()

    # -- configuration -----------------------------------------------------------------------
    def add(self, *, slug: str, name: str, issuer: str, client_id: str, client_secret: str | None,
            scope: str = "openid profile", trusted_claims: Iterable[str] = (), identity_level: int = 1,
            acr_map: dict[str, str] | None = None, may_create: bool = False,
            algorithms: Iterable[str] = DEFAULT_ALGORITHMS, end_session: bool = False,
            token_auth: str = "client_secret_basic") -> UpstreamConfig:
        """Register (or replace) an OpenID Connect upstream after reading its discovery document."""
        check_url("issuer", issuer)
        algs = tuple(dict.fromkeys(algorithms))
        if not algs or set(algs) - set(ALGORITHMS):
            raise UpstreamInputError(f"algorithms must be among {' '.join(ALGORITHMS)}")
        if "openid" not in scope.split():
            raise UpstreamInputError("scope must include openid")
        row = Upstream(slug=slug, name=name, kind=OIDC, issuer=issuer, client_id=client_id, scope=scope,
                       trusted_claims=sorted(set(trusted_claims)), identity_level=identity_level,
                       acr_map=dict(acr_map or {}), may_create=may_create, algorithms=list(algs),
                       end_session=end_session, token_auth=token_auth)
        self._check(row)
        self._discover(issuer)  # an issuer that does not answer as itself is not registered
        return self._save(row, client_secret)

    def add_oauth2(self, *, slug: str, name: str, authorization_endpoint: str, token_endpoint: str,
                   userinfo_endpoint: str, claim_map: dict[str, str], client_id: str, client_secret: str | None,
                   scope: str = "", trusted_claims: Iterable[str] = (), identity_level: int = 1,
                   acr_map: dict[str, str] | None = None, may_create: bool = False,
                   token_auth: str = "client_secret_basic") -> UpstreamConfig:
        """Register (or replace) a plain OAuth 2 upstream: no discovery and no ID token, so who the person
        is comes from its userinfo answer through `claim_map` (our claim -> dotted path; `sub` required)."""
        for field_name, url in (("authorization_endpoint", authorization_endpoint),
                                ("token_endpoint", token_endpoint), ("userinfo_endpoint", userinfo_endpoint)):
            check_url(field_name, url)
        mapping = check_mapping(claim_map)
        trusted = sorted(set(trusted_claims))
        row = Upstream(slug=slug, name=name, kind=OAUTH2, issuer=None, client_id=client_id, scope=scope,
                       authorization_endpoint=authorization_endpoint, token_endpoint=token_endpoint,
                       userinfo_endpoint=userinfo_endpoint, claim_map=mapping, trusted_claims=trusted,
                       identity_level=identity_level, acr_map=dict(acr_map or {}), may_create=may_create,
                       algorithms=[], end_session=False, token_auth=token_auth)
        self._check(row)
        unmapped = [c for c in trusted if c not in mapping]
        if unmapped:
            raise UpstreamInputError(f"trusted claim {unmapped[0]!r} is not in the claim mapping")
        return self._save(row, client_secret)

    def _check(self, row: Upstream) -> None:
        """What both kinds must satisfy."""
        if not row.slug or len(row.slug) > 32 or set(row.slug) - SLUG_CHARS:
            raise UpstreamInputError("slug: 1–32 characters of a-z 0-9 -")
        if not row.name.strip() or not row.client_id.strip():
            raise UpstreamInputError("name and client_id must not be empty")
        if not 1 <= row.identity_level <= 4:
            raise UpstreamInputError("identity level must be 1–4")
        unknown = set(row.trusted_claims) - set(TRUSTABLE)
        if unknown:
            raise UpstreamInputError(f"trusted claims must be among {' '.join(TRUSTABLE)}, got {sorted(unknown)[0]!r}")
        if row.token_auth not in TOKEN_AUTH_METHODS:
            raise UpstreamInputError(f"token endpoint authentication must be one of {' '.join(TOKEN_AUTH_METHODS)}")
        with self._sessions() as session:
            kind = session.execute(select(Upstream.kind).where(Upstream.slug == row.slug)).scalar()
        if kind is not None and kind != row.kind:  # its links name subjects of the other kind's namespace
            raise UpstreamInputError(f"{row.slug!r} is already an upstream of kind {kind}")

    def _save(self, row: Upstream, client_secret: str | None) -> UpstreamConfig:
        row.master_key_id = self._master_id
        row.client_secret_sealed = self._aead.seal(client_secret.encode(), aad=row.slug) if client_secret else None
        with self._sessions() as session, session.begin():
            if row.issuer is not None:
                taken = session.execute(select(Upstream.slug).where(Upstream.issuer == row.issuer)).scalar()
                if taken is not None and taken != row.slug:
                    raise UpstreamInputError(f"issuer is already registered as {taken!r}")
            session.merge(row)
        self._store.incr(VERSION_KEY, ttl=10 * 365 * 86400)
        self._configs = (None, 0.0, {})
        return self._config(row)

    def all(self) -> list[UpstreamConfig]:
        return sorted(self._current().values(), key=lambda u: u.slug)

    def enabled(self) -> list[UpstreamConfig]:
        return [u for u in self.all() if u.enabled]

    def get(self, slug: str) -> UpstreamConfig | None:
        return self._current().get(slug)

    def by_issuer(self, issuer: str) -> UpstreamConfig | None:
        return next((u for u in self._current().values() if u.kind == OIDC and u.issuer == issuer and u.enabled), None)

    def _current(self) -> dict[str, UpstreamConfig]:
        """The configured upstreams, reloaded when the version in the store changes (checked at most
        once a second) and at least every 30 seconds."""
        version, loaded, configs = self._configs
        now = time.monotonic()
        if now - loaded < 1.0:
            return configs
        stored = self._store.get(VERSION_KEY)
        if stored is None or stored != version or now - loaded >= 30.0:
            with self._sessions() as session:  # the login page reads this: a dropped connection is retried once
                try:
                    rows = session.execute(select(Upstream)).scalars().all()
                except DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise
                    session.rollback()
                    rows = session.execute(select(Upstream)).scalars().all()
            configs = {row.slug: self._config(row) for row in rows}
        self._configs = (stored, now, configs)
        return configs

    def _config(self, row: Upstream) -> UpstreamConfig:
        secret = self._aead.open(row.client_secret_sealed, aad=row.slug).decode() if row.client_secret_sealed else None
        return UpstreamConfig(row.slug, row.name, row.issuer, row.client_id, secret, row.scope,
                              frozenset(row.trusted_claims), row.identity_level, dict(row.acr_map), row.may_create,
                              tuple(row.algorithms), row.end_session, row.enabled, row.kind,
                              row.authorization_endpoint, row.token_endpoint, row.userinfo_endpoint,
                              dict(row.claim_map), row.token_auth)

    # -- what is fetched ---------------------------------------------------------------------
    def endpoints(self, upstream: UpstreamConfig) -> tuple[str, str]:
        """The authorization and token endpoints: configured (oauth2) or discovered (oidc)."""
        if upstream.kind == OAUTH2:
            return str(upstream.authorization_endpoint), str(upstream.token_endpoint)
        metadata = self.metadata(upstream)
        return metadata["authorization_endpoint"], metadata["token_endpoint"]

    def metadata(self, upstream: UpstreamConfig) -> dict[str, Any]:
        hit = self._metadata.get(upstream.issuer)
        if hit is not None and hit.until > time.monotonic():
            return hit.value
        value = self._discover(upstream.issuer)
        now = time.monotonic()
        self._metadata[upstream.issuer] = _Cached(value, now + METADATA_TTL, now)
        return value

    def _discover(self, issuer: str) -> dict[str, Any]:
        document = fetch_json(self.http, issuer + "/.well-known/openid-configuration")
        # OIDC Discovery §4.3: the issuer in the document is exactly the one we asked
        if not isinstance(document.get("issuer"), str) or not equal(document["issuer"], issuer):
            raise UpstreamError("upstream_unavailable", "the discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise UpstreamError("upstream_unavailable", f"the discovery document has no {name}")
            check_url(name, document[name])
        return document

    def key(self, upstream: UpstreamConfig, kid: str) -> jwk.JWK | None:
        """The upstream's published key `kid`; an unknown kid refetches the set (rate-limited)."""
        now = time.monotonic()
        hit = self._jwks.get(upstream.issuer)
        if hit is not None and hit.until > now and (kid in hit.value or now - hit.fetched < REFETCH_AFTER):
            return hit.value.get(kid)
        with self._lock:
            hit = self._jwks.get(upstream.issuer)
            if hit is None or hit.until <= now or (kid not in hit.value and now - hit.fetched >= REFETCH_AFTER):
                document = fetch_json(self.http, self.metadata(upstream)["jwks_uri"])
                entries = document.get("keys") if isinstance(document.get("keys"), list) else []
                keys = {k.get("kid"): k for k in map(_public_key, [e for e in entries if isinstance(e, dict)]) if k}
                hit = _Cached(keys, now + JWKS_TTL, now)
                self._jwks[upstream.issuer] = hit
        return hit.value.get(kid)

    def verify(self, upstream: UpstreamConfig, token: str, typ: str | None = None) -> dict[str, Any]:
        """Claims of a JWS the upstream signed with one of its allowed algorithms (no `none`, ever)."""
        try:
            return jose.verify(token, lambda kid: self.key(upstream, kid), upstream.algorithms, typ=typ)
        except jose.InvalidJws as exc:
            raise UpstreamError("upstream_invalid_token", str(exc)) from None

    def validate_id_token(self, upstream: UpstreamConfig, token: str, nonce: str) -> dict[str, Any]:
        """OIDC Core §3.1.3.7, every step: signature and alg, iss, aud, azp, exp, iat, nonce, sub."""
        claims = self.verify(upstream, token)
        check_claims(claims, issuer=upstream.issuer, audience=upstream.client_id)
        now = int(time.time())
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != upstream.client_id:
            raise UpstreamError("upstream_invalid_token", "azp is not our client_id")
        if not isinstance(claims.get("iat"), int) or claims["iat"] < now - MAX_AGE:
            raise UpstreamError("upstream_invalid_token", "the ID token was issued too long ago")
        if not isinstance(claims.get("nonce"), str) or not equal(claims["nonce"], nonce):
            raise UpstreamError("upstream_invalid_token", "the nonce does not match the one we sent")
        return claims


def check_claims(claims: dict[str, Any], *, issuer: str, audience: str | tuple[str, ...],
                 require_sub: bool = True) -> None:
    """What every upstream JWT must have: the upstream's `iss`, an accepted `aud`, a live `exp`, an
    `iat` not in the future, and (unless a logout token) a `sub`."""
    now = int(time.time())
    if claims.get("iss") != issuer:
        raise UpstreamError("upstream_invalid_token", "iss is not the upstream's issuer")
    accepted = (audience,) if isinstance(audience, str) else audience
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    if not any(a in accepted for a in audiences):
        raise UpstreamError("upstream_invalid_token", "aud is not for us")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now - LEEWAY:
        raise UpstreamError("upstream_invalid_token", "the token has expired")
    if not isinstance(claims.get("iat"), int) or claims["iat"] > now + LEEWAY:
        raise UpstreamError("upstream_invalid_token", "iat is in the future")
    if "sub" in claims and not (isinstance(claims["sub"], str) and 0 < len(claims["sub"]) <= 255):
        raise UpstreamError("upstream_invalid_token", "sub is not a string")
    if require_sub and "sub" not in claims:
        raise UpstreamError("upstream_invalid_token", "sub is missing")
