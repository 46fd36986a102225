"""Access tokens (JWT, RFC 9068) and ID tokens (OIDC Core §2), with pairwise subjects."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from cryptography.exceptions import InvalidTag

from idp import jose
from idp.clients import ID_TOKEN_ALGS, RegisteredClient
from idp.crypto import Aead, b64u, b64u_decode, random_token
from idp.keys import KeyRing
from idp.settings import Settings
from idp.store.ephemeral import EphemeralStore

ACCESS_TOKEN_ALGS = ID_TOKEN_ALGS
VERIFIED_CACHE_SIZE = 4096  # access tokens a worker remembers as verified (a few MB at most)


class _Verified(NamedTuple):
    """An access token whose signature, issuer and reference were checked once, with the key that signed it."""

    claims: dict[str, Any]
    account_id: str | None
    kid: str
    exp: int


@dataclass(frozen=True)
class Authentication:
    """Who authenticated, how and when; carried from login through the code into the tokens."""

    account_id: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    sid: str
    grant_id: str = field(default_factory=lambda: random_token(12))
    # What the grant's `claims` request asked for (OIDC Core §5.5), kept with the grant like grant_id.
    id_token_claims: tuple[str, ...] = ()
    userinfo_claims: tuple[str, ...] = ()
    # The verified_claims requests (OpenID Connect for Identity Assurance), as the client sent them.
    id_token_verified: Any = None
    userinfo_verified: Any = None
    # The enterprise this person acts for in this grant (an account id), chosen at login.
    acting_for: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"a": self.account_id, "t": self.auth_time, "m": list(self.amr), "c": self.acr, "s": self.sid, "g": self.grant_id,
                **({"qi": list(self.id_token_claims)} if self.id_token_claims else {}),
                **({"qu": list(self.userinfo_claims)} if self.userinfo_claims else {}),
                **({"vi": self.id_token_verified} if self.id_token_verified is not None else {}),
                **({"vu": self.userinfo_verified} if self.userinfo_verified is not None else {}),
                **({"e": self.acting_for} if self.acting_for else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Authentication:
        return cls(account_id=data["a"], auth_time=data["t"], amr=tuple(data["m"]), acr=data["c"], sid=data["s"], grant_id=data["g"],
                   id_token_claims=tuple(data.get("qi", ())), userinfo_claims=tuple(data.get("qu", ())),
                   id_token_verified=data.get("vi"), userinfo_verified=data.get("vu"), acting_for=data.get("e"))


class TokenIssuer:
    def __init__(self, settings: Settings, keys: KeyRing, store: EphemeralStore, pairwise_key: bytes,
                 reference: Aead) -> None:
        self.issuer = settings.issuer
        self._settings = settings
        self._keys = keys
        self._store = store
        self._pairwise_key = pairwise_key
        # The account behind a pairwise `sub`, sealed so the token reveals nothing correlatable.
        self._reference = reference
        # A resource server presents the same token many times; its signature is checked once per worker.
        # Revocation is asked of the store on every use, and an entry lapses with its key's publication.
        self._verified: dict[str, _Verified] = {}
        self._verified_lock = threading.Lock()

    def subject(self, client: RegisteredClient, account_id: str) -> str:
        """OIDC Core §8.1: a pairwise subject per sector unless the client is allowed public ones."""
        if client.subject_type == "public":
            return account_id
        mac = hmac.new(self._pairwise_key, f"{client.sector_identifier}|{account_id}".encode(), hashlib.sha256)
        return b64u(mac.digest())

    def subjects(self, client: RegisteredClient, auth: Authentication) -> dict[str, Any]:
        """`sub`, and for a person acting for an enterprise, the enterprise as `sub` and the person
        as the actor (`act`, in the spirit of RFC 8693 §4.1)."""
        if not auth.acting_for:
            return {"sub": self.subject(client, auth.account_id)}
        return {"sub": self.subject(client, auth.acting_for), "act": {"sub": self.subject(client, auth.account_id)}}

    def access_token(self, client: RegisteredClient, auth: Authentication | None, scope: str,
                     audience: str | list[str] | None = None, jkt: str | None = None,
                     extra: dict[str, Any] | None = None, x5t: str | None = None,
                     subject_client: RegisteredClient | None = None) -> tuple[str, int]:
        """An RFC 9068 access token: for a person (`auth`) or, without one, for the client itself;
        bound to a DPoP key when `jkt` is its thumbprint (RFC 9449 §6.1), to a client certificate
        when `x5t` is its thumbprint (RFC 8705 §3, `cnf.x5t#S256`); `extra` adds claims (e.g. `act`,
        RFC 8693 §4.1). The person's `sub` is the one `subject_client` knows them by (default: `client`),
        for a token meant for another client (a token exchange's audience)."""
        now = int(time.time())
        ttl = self._settings.access_token_ttl
        jti = random_token(16)
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": client.client_id, "aud": audience or self.issuer,
            "client_id": client.client_id, "scope": scope, "jti": jti, "iat": now, "exp": now + ttl,
        }
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        if auth is not None:
            claims.update(self.subjects(subject_client or client, auth))
            claims.update(auth_time=auth.auth_time, acr=auth.acr,
                          gid=auth.grant_id, ref=b64u(self._reference.seal(auth.account_id.encode(), aad=jti)))
            if auth.userinfo_claims:  # private: the claims requested at userinfo, by name only
                claims["uc"] = list(auth.userinfo_claims)
            if auth.userinfo_verified is not None:  # the verified_claims request for userinfo
                claims["uv"] = auth.userinfo_verified
        if extra:
            claims.update(extra)
        if x5t is not None:
            claims["cnf"] = {**claims.get("cnf", {}), "x5t#S256": x5t}
        alg = client.access_token_signed_response_alg or self._settings.access_token_alg
        return jose.sign(claims, self._keys.signing_key(alg), typ="at+jwt"), ttl

    def id_token(self, client: RegisteredClient, auth: Authentication, *, nonce: str | None,
                 access_token: str | None, extra: dict[str, Any] | None = None) -> str:
        now = int(time.time())
        alg = client.id_token_signed_response_alg
        jti = random_token(16)
        claims: dict[str, Any] = {
            "iss": self.issuer, **self.subjects(client, auth), "aud": client.client_id,
            "exp": now + self._settings.id_token_ttl, "iat": now, "auth_time": auth.auth_time,
            "acr": auth.acr, "amr": list(auth.amr), "sid": auth.sid, "azp": client.client_id, "jti": jti,
            # The account and grant behind a pairwise `sub`, sealed: lets a partner present this ID token
            # in a token exchange (RFC 8693) and be refused once the grant is revoked.
            "ref": b64u(self._reference.seal(json.dumps([auth.account_id, auth.grant_id]).encode(), aad=jti)),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = jose.half_hash(access_token, alg)
        if extra:
            claims.update(extra)
        return jose.sign(claims, self._keys.signing_key(alg))

    def read_id_token(self, token: str) -> dict[str, Any] | None:
        """Claims of an ID token this provider issued, expired or not: a hint (OIDC Core §3.1.2.1,
        RP-Initiated Logout §2), never a credential."""
        try:
            claims = jose.verify(token, self._keys.public_key, ID_TOKEN_ALGS, typ="JWT")
        except jose.InvalidJws:
            return None
        return claims if claims.get("iss") == self.issuer else None

    def read_own_id_token(self, token: str) -> tuple[dict[str, Any], str] | None:
        """Claims and account id of a valid, unexpired ID token of ours whose grant was not revoked; else None."""
        claims = self.read_id_token(token)
        if claims is None or not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            return None
        if not isinstance(claims.get("ref"), str) or not isinstance(claims.get("jti"), str):
            return None  # issued before ID tokens carried them, or not an ID token at all (e.g. signed userinfo)
        try:
            account_id, grant_id = json.loads(self._reference.open(b64u_decode(claims["ref"]), aad=claims["jti"]))
        except (InvalidTag, ValueError, TypeError):
            return None
        if self.grant_revoked(str(grant_id)):
            return None
        return claims, str(account_id)

    def read_access_token(self, token: str) -> tuple[dict[str, Any], str | None] | None:
        """Claims and account id (None for a client's own token) of a valid, unexpired, unrevoked
        access token of ours; else None."""
        found = self.read_with_mark(token, None)
        return None if found is None else (found[0], found[1])

    def read_with_mark(self, token: str, mark_key: Callable[[str], str] | None) -> tuple[
            dict[str, Any], str | None, bytes | None] | None:
        """As `read_access_token`, with the store's value under `mark_key(account id)` read in the
        same round trip as the revocation marks (None for a client's own token, or without `mark_key`)."""
        verified = self._verified.get(token)
        if verified is None or self._keys.public_key(verified.kid) is None:
            verified = self._verify_access_token(token)
            if verified is None:
                return None
            self._remember(token, verified)
        claims = verified.claims
        if verified.exp <= time.time():
            return None
        gid = claims.get("gid")
        keys = [revoked_jti_key(str(claims.get("jti")))] + ([revoked_grant_key(str(gid))] if gid is not None else [])
        account_id = verified.account_id
        wanted = mark_key is not None and account_id is not None
        values = self._store.get_many(keys + [mark_key(account_id)] if wanted else keys)  # type: ignore[misc]
        revoked = values[:-1] if wanted else values
        if any(mark is not None for mark in revoked):  # one round trip for every mark
            return None
        return dict(claims), account_id, values[-1] if wanted else None

    def _verify_access_token(self, token: str) -> _Verified | None:
        try:
            claims = jose.verify(token, self._keys.public_key, ACCESS_TOKEN_ALGS, typ="at+jwt")
        except jose.InvalidJws:
            return None
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int):
            return None
        account_id = None
        if "ref" in claims:
            try:
                account_id = self._reference.open(b64u_decode(str(claims["ref"])), aad=str(claims.get("jti"))).decode()
            except (InvalidTag, ValueError):  # not sealed by us: not our token
                return None
        kid = jose.header(token)["kid"]  # verified: the header names a published key
        return _Verified(claims, account_id, kid, claims["exp"])

    def _remember(self, token: str, verified: _Verified) -> None:
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:  # amortised: a sweep frees at least a quarter
                now = time.time()
                live = [(t, v) for t, v in self._verified.items() if v.exp > now]
                self._verified = dict(live[-(VERIFIED_CACHE_SIZE * 3 // 4):])  # the newest, in insertion order
            self._verified[token] = verified

    def revoke_access_token(self, claims: dict[str, Any]) -> None:
        """RFC 7009: remember the revoked `jti` until the token would have expired, on every worker."""
        ttl = int(claims["exp"]) - int(time.time()) + 60
        if ttl > 0:
            self._store.put(revoked_jti_key(str(claims["jti"])), b"1", ttl=ttl)

    def grant_revoked(self, grant_id: str) -> bool:
        return self._store.get(revoked_grant_key(grant_id)) is not None

    def revoke_grant(self, grant_id: str) -> None:
        """Every access token and ID token issued under this grant stops working (e.g. on code reuse): the
        mark lives as long as the longer-lived of them (a token exchange reads ID tokens against it)."""
        ttl = max(self._settings.access_token_ttl, self._settings.id_token_ttl) + 60
        self._store.put(revoked_grant_key(grant_id), b"1", ttl=ttl)


def audience(claims: dict[str, Any]) -> list[Any]:
    """`aud` as a list: a JWT may carry one audience as a string or several as an array."""
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


def revoked_grant_key(grant_id: str) -> str:
    return f"revoked:grant:{grant_id}"


def revoked_jti_key(jti: str) -> str:
    return f"revoked:jti:{jti}"
