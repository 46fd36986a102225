"""Registered clients: creation, secrets (shown once, stored by digest), lookup with a bounded cache."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from typing import Any, Callable

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, delete

from idp import bridge
from idp.client_keys import ASYMMETRIC_ALGS, HMAC_ALGS, REQUEST_OBJECT_ALGS, parse_jwks
from idp.crypto import Aead, digest, equal, random_token
from idp.models import Client, Consent, RefreshToken
from idp.models._base import utcnow
from idp.store.ephemeral import EphemeralStore

VERSION_KEY = "clients:version"
ID_TOKEN_ALGS = ("RS256", "ES256", "EdDSA")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "offline_access", "enterprise")
NOT_BY_DEFAULT = ("offline_access", "enterprise")  # a client is registered with these only when asked
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 §3.4
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE, TOKEN_EXCHANGE, JWT_BEARER)
SERVICE_GRANTS = frozenset({"client_credentials", TOKEN_EXCHANGE, JWT_BEARER})  # no browser, a secret needed
# How a client authenticates at the token endpoint; discovery and registration read this list.
JWT_METHODS = ("private_key_jwt", "client_secret_jwt")  # RFC 7523 §2.2
CONFIDENTIAL_METHODS = (*SECRET_METHODS, *JWT_METHODS)
AUTH_METHODS = (*CONFIDENTIAL_METHODS, "none")
APPLICATION_TYPES = ("web", "native")


class ClientInputError(ValueError):
    """Client metadata that cannot be accepted; the message says which field and why."""


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    """A client as authlib sees it: immutable, safe to cache and share between threads."""

    client_id: str
    name: str
    secret_digest: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    scope: str
    token_endpoint_auth_method: str
    first_party: bool
    subject_type: str
    sector_identifier: str
    id_token_signed_response_alg: str
    allowed_scopes: frozenset[str] = field(default_factory=frozenset)
    userinfo_signed_response_alg: str | None = None
    access_token_signed_response_alg: str | None = None
    resources: tuple[str, ...] = ()
    default_resource: str | None = None
    session_refresh_tokens: bool = False
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = False
    release_id_number: bool = False
    application_type: str = "web"
    registration_access_digest: str | None = None  # set for self-registered clients (RFC 7592)
    sector_identifier_uri: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    contacts: tuple[str, ...] = ()
    issued_at: int = 0
    dpop_bound_access_tokens: bool = False
    tls_client_auth_subject_dn: str | None = None
    minimum_acr: str | None = None
    jwks: str | None = None  # the registered JWK Set, as JSON text
    jwks_uri: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    request_object_signing_alg: str | None = None
    request_uris: tuple[str, ...] = ()
    require_pushed_authorization_requests: bool = False
    secret_sealed: bytes | None = field(default=None, repr=False)

    @property
    def public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def self_registered(self) -> bool:
        return self.registration_access_digest is not None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return list_to_scope([s for s in scope_to_list(scope) if s in self.allowed_scopes])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §2.1: exact string matching, no wildcards, no normalisation ...
        if redirect_uri in self.redirect_uris:
            return True
        # ... except RFC 8252 §7.3: a native app's loopback IP redirect may use any port.
        return self.application_type == "native" and _without_loopback_port(redirect_uri) in {
            _without_loopback_port(uri) for uri in self.redirect_uris if _is_loopback_ip_redirect(uri)}

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_digest is not None and equal(digest(client_secret), self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A secret may travel in the Basic header or the body: the same secret, the same strength.
        if self.token_endpoint_auth_method in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        # a code is for the authorization_code grant: a client registered for the device grant (or
        # client credentials) alone gets none, whatever an older row's response_types says
        return response_type in self.response_types and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


# Metadata copied unchanged from the row to the cached client.
_COPIED = ("userinfo_signed_response_alg", "access_token_signed_response_alg", "default_resource",
           "session_refresh_tokens", "backchannel_logout_uri", "backchannel_logout_session_required",
           "frontchannel_logout_uri", "frontchannel_logout_session_required", "release_id_number",
           "application_type", "registration_access_digest", "sector_identifier_uri", "client_uri", "logo_uri",
           "policy_uri", "tos_uri", "dpop_bound_access_tokens", "tls_client_auth_subject_dn", "minimum_acr",
           "jwks_uri", "token_endpoint_auth_signing_alg", "request_object_signing_alg",
           "require_pushed_authorization_requests", "secret_sealed")


def _registered(row: Client) -> RegisteredClient:
    # OIDC Core §8.1: the sector is the redirect host; a client without one (a kiosk) is its own sector
    sector = row.sector_identifier or (urlsplit(row.redirect_uris[0]).hostname or "" if row.redirect_uris
                                       else row.client_id)
    return RegisteredClient(
        client_id=row.client_id,
        name=row.name,
        secret_digest=row.secret_digest,
        redirect_uris=tuple(row.redirect_uris),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
        grant_types=tuple(row.grant_types),
        response_types=tuple(row.response_types),
        scope=row.scope,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        first_party=row.first_party,
        subject_type=row.subject_type,
        sector_identifier=sector,
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        allowed_scopes=frozenset(scope_to_list(row.scope)),
        resources=tuple(row.resources),
        contacts=tuple(row.contacts),
        issued_at=int(row.created_at.timestamp()) if row.created_at else 0,
        jwks=json.dumps(row.jwks, separators=(",", ":"), sort_keys=True) if row.jwks is not None else None,
        request_uris=tuple(row.request_uris),
        **{name: getattr(row, name) for name in _COPIED},
    )


def _is_loopback_ip_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")


def _without_loopback_port(uri: str) -> str:
    parts = urlsplit(uri)
    if not _is_loopback_ip_redirect(uri):
        return uri
    host = "[::1]" if parts.hostname == "::1" else "127.0.0.1"
    return parts._replace(netloc=host).geturl()


def validate_redirect_uri(uri: str, application_type: str | None = None, setting: str = "redirect_uri") -> str:
    """Absolute, no fragment, https except loopback or a private-use scheme (RFC 8252).

    `application_type` (OIDC Registration §2) makes it stricter: a `web` client uses https only; a
    `native` one https, loopback http or a private-use scheme. None is an administrator's registration.
    """
    from idp.settings import is_loopback_host

    parts = urlsplit(uri)
    if not parts.scheme:
        raise ClientInputError(f"{setting} {uri!r} must be an absolute URI")
    if parts.fragment or "#" in uri:
        raise ClientInputError(f"{setting} {uri!r} must not contain a fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ClientInputError(f"{setting} {uri!r} must use https (http only on loopback)")
    if parts.scheme == "https" and not parts.hostname:
        raise ClientInputError(f"{setting} {uri!r} has no host")
    if parts.scheme not in ("http", "https") and "." not in parts.scheme:
        raise ClientInputError(f"{setting} {uri!r}: a private-use scheme must be a reversed domain name")
    if application_type == "web" and parts.scheme != "https":
        raise ClientInputError(f"{setting} {uri!r} must use https for a web client "
                               "(loopback http and private-use schemes are for application_type native)")
    if application_type == "native" and parts.scheme == "http" and parts.hostname == "localhost":
        raise ClientInputError(f"{setting} {uri!r}: use the loopback IP literal 127.0.0.1 or [::1], "
                               "not localhost (RFC 8252 §8.3)")
    return uri


def sector_of(redirect_uris: list[str], sector_identifier_uri: str | None, client_id: str) -> str:
    """OIDC Core §8.1: the host of sector_identifier_uri, else the one host of the redirect URIs.

    A private-use scheme (RFC 8252 §7.1) is a reversed domain the app owns and counts as its host;
    a loopback address is everybody's, so a client redirecting only there is a sector of its own.
    """
    from idp.settings import is_loopback_host

    if sector_identifier_uri:
        return urlsplit(sector_identifier_uri).hostname or ""
    hosts = set()
    for uri in redirect_uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https"):
            hosts.add(parts.scheme)
        elif not is_loopback_host(parts.hostname):
            hosts.add(parts.hostname or "")
    if len(hosts) > 1:
        raise ClientInputError("redirect_uris span several hosts "
                               f"({', '.join(sorted(hosts))}); a pairwise client needs a sector_identifier_uri")
    return hosts.pop() if hosts else f"client:{client_id}"


def validate_resource(uri: str) -> str:
    """RFC 8707 §2: an absolute URI without a fragment."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in uri:
        raise ClientInputError(f"resource {uri!r} must be an absolute URI without a fragment")
    return uri


def validate_logout_uri(setting: str, uri: str) -> str:
    """Logout and information URIs: absolute, https except loopback, no fragment."""
    from idp.settings import is_loopback_host

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or "#" in uri:
        raise ClientInputError(f"{setting} {uri!r} must be an absolute http(s) URI without a fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ClientInputError(f"{setting} {uri!r} must use https (http only on loopback)")
    return uri


def validate_request_uri(uri: str) -> str:
    """OIDC Core §6.2: a request_uri the client registered; https (loopback http), a fragment allowed."""
    validate_logout_uri("request_uri", uri.split("#", 1)[0])
    return uri


def check_key_metadata(method: str, jwks: dict | None, jwks_uri: str | None, signing_alg: str | None,
                       request_object_alg: str | None, request_uris: list[str]) -> None:
    """RFC 7591 §2 / RFC 7523 / RFC 9101: keys, methods and algorithms that fit together."""
    if jwks is not None and jwks_uri is not None:  # RFC 7591 §2: MUST NOT both be present
        raise ClientInputError("jwks and jwks_uri must not both be given")
    if jwks is not None:
        try:
            parse_jwks(jwks)
        except ValueError as exc:
            raise ClientInputError(f"jwks {exc}") from None
    if jwks_uri is not None:
        validate_logout_uri("jwks_uri", jwks_uri)
    has_keys = jwks is not None or jwks_uri is not None
    if method == "private_key_jwt" and not has_keys:
        raise ClientInputError("private_key_jwt needs the client's public keys: jwks or jwks_uri")
    if signing_alg is not None:
        allowed = {"private_key_jwt": ASYMMETRIC_ALGS, "client_secret_jwt": HMAC_ALGS}.get(method)
        if allowed is None:
            raise ClientInputError("token_endpoint_auth_signing_alg needs private_key_jwt or client_secret_jwt")
        if signing_alg not in allowed:
            raise ClientInputError(f"token_endpoint_auth_signing_alg must be one of {', '.join(allowed)} for {method}")
    if request_object_alg is not None:
        if request_object_alg not in REQUEST_OBJECT_ALGS:
            raise ClientInputError(f"request_object_signing_alg must be one of {', '.join(REQUEST_OBJECT_ALGS)}")
        if request_object_alg != "none" and not has_keys:
            raise ClientInputError("signed request objects need the client's public keys: jwks or jwks_uri")
    for uri in request_uris:
        validate_request_uri(uri)


def holds_secret(method: str) -> bool:
    """A private_key_jwt client proves itself with its key, a tls_client_auth one with its certificate
    (RFC 8705 §2), a public one with nothing: none of them has a secret."""
    return method not in ("none", "private_key_jwt", "tls_client_auth")


class ClientRegistry:
    """Reads clients through a per-worker cache invalidated by a version number in the store."""

    def __init__(self, engine: Engine, store: EphemeralStore, *, max_age: float = 30.0,
                 sealer: Aead | None = None) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._store = store
        self._sealer = sealer
        self._max_age = max_age
        self._cache: dict[str, tuple[float, RegisteredClient | None]] = {}
        self._version: bytes | None = None
        self._checked_at = 0.0
        self._stale_before = 0.0  # entries read before this are stale: the version changed since
        self._reading: set[str] = set()  # client ids being read again right now
        self._lock = threading.Lock()

    def get(self, client_id: str) -> RegisteredClient | None:
        """The client, from this worker's cache while it is current.

        An entry older than `max_age` is read again by one caller while the others get the entry in
        hand: the age is only a backstop, and every request of a worker names the same few clients,
        so without this an entry's expiry sent all of them to the database at once. An entry read
        before the store's version last changed (a client was changed) is never served: every
        caller reads again."""
        if not client_id or len(client_id) > 64:
            return None
        self._check_version()
        hit = self._cache.get(client_id)
        now = time.monotonic()
        if hit is not None and hit[0] >= self._stale_before and (now - hit[0] < self._max_age
                                                                 or client_id in self._reading):
            return hit[1]
        self._reading.add(client_id)
        try:
            row = bridge.offload(self._read, client_id)  # SQL: on the thread pool if this runs on the event loop
        finally:
            self._reading.discard(client_id)
        client = _registered(row) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (now, client)
        return client

    def held(self, client_id: str | None) -> bool:
        """True when this worker holds the client (of any age): looking it up costs no read."""
        hit = self._cache.get(client_id) if client_id else None
        return hit is not None and hit[1] is not None

    def _read(self, client_id: str) -> Client | None:
        with self._sessions() as session:
            return session.get(Client, client_id)

    def jwt_secret(self, client: RegisteredClient) -> str | None:
        """The secret of a client_secret_jwt client, the HMAC key of its assertions."""
        if client.secret_sealed is None or self._sealer is None:
            return None
        return self._sealer.open(client.secret_sealed, f"client/{client.client_id}").decode()

    def _check_version(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < 1.0:
            return
        self._checked_at = now
        version = self._store.get(VERSION_KEY)
        if version != self._version:
            with self._lock:
                # taken after the answer: a read begun while it was on its way may predate the change
                self._stale_before = time.monotonic()
                self._version = version

    def create(self, *, name: str, redirect_uris: list[str], public: bool = False, client_id: str | None = None,
               registration_access_token: str | None = None,
               in_transaction: Callable[[Session], None] | None = None,
               **metadata: Any) -> tuple[RegisteredClient, str | None]:
        """Register a client; returns it and its secret (None for public clients), shown this once.

        `in_transaction` runs inside the INSERT's transaction (e.g. spending an initial access token),
        so either both happen or neither does. Metadata keywords are those of `validated_columns`.
        """
        client_id = client_id or random_token(16)
        values = validated_columns(client_id=client_id, name=name, redirect_uris=redirect_uris, public=public,
                                   **metadata)
        method = values["token_endpoint_auth_method"]
        secret = random_token(32) if holds_secret(method) else None  # 256 bits
        sealed = None
        if method == "client_secret_jwt":  # the HMAC key itself is needed, not only its digest
            if self._sealer is None or secret is None:
                raise ClientInputError("client_secret_jwt is not available: no key to seal the secret with")
            sealed = self._sealer.seal(secret.encode(), f"client/{client_id}")
        row = Client(client_id=client_id, secret_digest=digest(secret) if secret else None, secret_sealed=sealed,
                     registration_access_digest=digest(registration_access_token) if registration_access_token else None,
                     **values)
        with self._sessions() as session, session.begin():
            if session.get(Client, row.client_id) is not None:
                raise ClientInputError(f"client_id {row.client_id!r} already exists")
            if in_transaction is not None:
                in_transaction(session)
            session.add(row)
        self._changed()
        return _registered(row), secret

    def update(self, client_id: str, *, name: str, redirect_uris: list[str], public: bool = False,
               **metadata: Any) -> RegisteredClient:
        """Replace a client's metadata (RFC 7592 §2.2); its id, secret and pairwise sector stay."""
        values = validated_columns(client_id=client_id, name=name, redirect_uris=redirect_uris, public=public,
                                   **metadata)
        with self._sessions() as session, session.begin():
            row = session.get(Client, client_id, with_for_update=True)
            if row is None:
                raise ClientInputError(f"client_id {client_id!r} is not registered")
            method = values["token_endpoint_auth_method"]
            if (row.token_endpoint_auth_method == "none") != (method == "none"):
                raise ClientInputError("token_endpoint_auth_method cannot change between a public and a "
                                       "confidential client; register a new client")
            if (row.secret_digest is not None) != holds_secret(method) or \
                    (method == "client_secret_jwt" and row.secret_sealed is None):
                raise ClientInputError(f"token_endpoint_auth_method cannot change from {row.token_endpoint_auth_method}"
                                       f" to {method}: the client's credential would not fit; register a new client")
            old_sector = _registered(row).sector_identifier
            if values["subject_type"] == "pairwise" and row.subject_type == "pairwise" \
                    and values["sector_identifier"] != old_sector:
                raise ClientInputError(f"the pairwise sector would change from {old_sector!r} to "
                                       f"{values['sector_identifier']!r}, and with it every subject identifier; "
                                       "register a sector_identifier_uri listing the new redirect URIs")
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            updated = _registered(row)
        self._changed()
        return updated

    def delete(self, client_id: str) -> bool:
        """Remove a client with its consents and refresh tokens (RFC 7592 §2.3)."""
        with self._sessions() as session, session.begin():
            row = session.get(Client, client_id, with_for_update=True)
            if row is None:
                return False
            session.exec(delete(RefreshToken).where(RefreshToken.client_id == client_id))  # type: ignore[call-overload]
            session.exec(delete(Consent).where(Consent.client_id == client_id))  # type: ignore[call-overload]
            session.delete(row)
        self._changed()
        return True

    def _changed(self) -> None:
        """Every worker drops its cached clients within a second; this one at once."""
        self._store.incr(VERSION_KEY, ttl=10 * 365 * 86400)
        with self._lock:
            self._cache.clear()
            self._stale_before = time.monotonic()  # a read begun before the change is not kept as current


def validated_columns(*, client_id: str, name: str, redirect_uris: list[str], public: bool = False, first_party: bool = False,
                      post_logout_redirect_uris: list[str] | None = None, scope: str | None = None,
                      grant_types: list[str] | None = None,
                      subject_type: str = "pairwise",
                      id_token_signed_response_alg: str = "RS256",
                      userinfo_signed_response_alg: str | None = None,
                      access_token_signed_response_alg: str | None = None,
                      resources: list[str] | None = None, default_resource: str | None = None,
                      session_refresh_tokens: bool = False,
                      backchannel_logout_uri: str | None = None, backchannel_logout_session_required: bool = False,
                      frontchannel_logout_uri: str | None = None, frontchannel_logout_session_required: bool = False,
                      token_endpoint_auth_method: str | None = None, application_type: str | None = None,
                      sector_identifier_uri: str | None = None, client_uri: str | None = None,
                      logo_uri: str | None = None, policy_uri: str | None = None, tos_uri: str | None = None,
                      contacts: list[str] | None = None, release_id_number: bool = False,
                      dpop_bound_access_tokens: bool = False,
                      tls_client_auth_subject_dn: str | None = None,
                      minimum_acr: str | None = None, jwks: dict | None = None,
                      jwks_uri: str | None = None, token_endpoint_auth_signing_alg: str | None = None,
                      request_object_signing_alg: str | None = None, request_uris: list[str] | None = None,
                      require_pushed_authorization_requests: bool = False) -> dict[str, Any]:
    """Check client metadata and return the columns of its row; ClientInputError says what is wrong.

    `application_type` None is an administrator's registration (the lenient redirect rules);
    "web" or "native" applies OIDC Registration §2 and RFC 8252, as self-registration does.
    """
    grant_types = list(grant_types or ["authorization_code"])
    method = token_endpoint_auth_method or ("none" if public else "client_secret_basic")
    if tls_client_auth_subject_dn is not None:  # RFC 8705 §2.1.2, registered by an administrator
        if public or not tls_client_auth_subject_dn.strip() or token_endpoint_auth_method not in (
                None, "tls_client_auth"):
            raise ClientInputError("tls_client_auth_subject_dn: a confidential client's certificate subject DN")
        method = "tls_client_auth"
    if not name.strip():
        raise ClientInputError("name must not be empty")
    # only the redirect-based grant needs a redirect URI (a kiosk or a service has none)
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientInputError("at least one redirect_uri is required")
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise ClientInputError(f"grant_type {unknown[0]!r} is not supported")
    if method not in AUTH_METHODS and not (method == "tls_client_auth" and tls_client_auth_subject_dn):
        raise ClientInputError(f"token_endpoint_auth_method {method!r} is not supported")
    check_key_metadata(method, jwks, jwks_uri, token_endpoint_auth_signing_alg, request_object_signing_alg,
                       list(request_uris or []))
    if method == "none" and set(grant_types) & SERVICE_GRANTS:
        raise ClientInputError(f"a public client cannot use {sorted(set(grant_types) & SERVICE_GRANTS)[0]}")
    for setting, alg in (("id_token_signed_response_alg", id_token_signed_response_alg),
                         ("userinfo_signed_response_alg", userinfo_signed_response_alg),
                         ("access_token_signed_response_alg", access_token_signed_response_alg)):
        if alg is not None and alg not in ID_TOKEN_ALGS:
            raise ClientInputError(f"{setting} must be one of {', '.join(ID_TOKEN_ALGS)}")
    if subject_type not in ("pairwise", "public"):
        raise ClientInputError("subject_type must be pairwise or public")
    for uri in redirect_uris:
        validate_redirect_uri(uri, application_type)
    for uri in post_logout_redirect_uris or []:
        validate_redirect_uri(uri, application_type, "post_logout_redirect_uri")
    resources = list(dict.fromkeys(resources or []))
    for resource in resources:
        validate_resource(resource)
    if default_resource is not None and default_resource not in resources:
        raise ClientInputError("default_resource must be one of the client's resources")
    for setting, uri in (("backchannel_logout_uri", backchannel_logout_uri),
                         ("frontchannel_logout_uri", frontchannel_logout_uri),
                         ("sector_identifier_uri", sector_identifier_uri), ("client_uri", client_uri),
                         ("logo_uri", logo_uri), ("policy_uri", policy_uri), ("tos_uri", tos_uri)):
        if uri is not None:
            validate_logout_uri(setting, uri)
    # One of the configured acr values (YIHAO_ACR_VALUES; the caller checks which): one not
    # configured would refuse every login, never waive itself (AcrValues.floor).
    if minimum_acr is not None and not (0 < len(minimum_acr) <= 255 and minimum_acr.isprintable()):
        raise ClientInputError("minimum_acr must be one of the configured acr values")
    redirect_uris = list(dict.fromkeys(redirect_uris))
    sector = sector_of(redirect_uris, sector_identifier_uri, client_id) if subject_type == "pairwise" else None
    return dict(
        name=name.strip(), redirect_uris=redirect_uris, post_logout_redirect_uris=list(post_logout_redirect_uris or []),
        grant_types=grant_types, response_types=["code"] if "authorization_code" in grant_types else [],
        scope=scope or " ".join(s for s in SUPPORTED_SCOPES if s not in NOT_BY_DEFAULT),
        token_endpoint_auth_method=method, first_party=first_party, subject_type=subject_type,
        sector_identifier=sector or None, id_token_signed_response_alg=id_token_signed_response_alg,
        userinfo_signed_response_alg=userinfo_signed_response_alg,
        access_token_signed_response_alg=access_token_signed_response_alg, resources=resources,
        default_resource=default_resource, session_refresh_tokens=session_refresh_tokens,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
        frontchannel_logout_uri=frontchannel_logout_uri,
        frontchannel_logout_session_required=frontchannel_logout_session_required,
        application_type=application_type or "web", sector_identifier_uri=sector_identifier_uri,
        client_uri=client_uri, logo_uri=logo_uri, policy_uri=policy_uri, tos_uri=tos_uri,
        contacts=list(contacts or []), release_id_number=release_id_number,
        dpop_bound_access_tokens=dpop_bound_access_tokens, tls_client_auth_subject_dn=tls_client_auth_subject_dn,
        minimum_acr=minimum_acr, jwks=jwks, jwks_uri=jwks_uri,
        token_endpoint_auth_signing_alg=token_endpoint_auth_signing_alg,
        request_object_signing_alg=request_object_signing_alg, request_uris=list(dict.fromkeys(request_uris or [])),
        require_pushed_authorization_requests=require_pushed_authorization_requests,
    )
