"""Relying parties registered as OpenID Connect clients."""
from __future__ import annotations

from datetime import datetime

from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from idp.models._base import json_list, when


class Client(SQLModel, table=True):
    client_id: str = Field(primary_key=True, max_length=64)
    secret_digest: str | None = Field(default=None, max_length=128)  # SHA-256 of the secret; None: public
    name: str = Field(max_length=255)
    redirect_uris: list[str] = json_list()
    post_logout_redirect_uris: list[str] = json_list()
    grant_types: list[str] = json_list()
    response_types: list[str] = json_list()
    scope: str = Field(default="openid profile email phone", max_length=1024)
    token_endpoint_auth_method: str = Field(default="client_secret_basic", max_length=64)
    first_party: bool = False
    subject_type: str = Field(default="pairwise", max_length=16)  # pairwise | public
    sector_identifier: str | None = Field(default=None, max_length=255)
    id_token_signed_response_alg: str = Field(default="RS256", max_length=16)
    userinfo_signed_response_alg: str | None = Field(default=None, max_length=16)  # None: plain JSON
    access_token_signed_response_alg: str | None = Field(default=None, max_length=16)  # None: the server's
    # RFC 8707: resource indicators the client may ask for; the default audience of its access tokens
    resources: list[str] = json_list()
    default_resource: str | None = Field(default=None, max_length=255)
    session_refresh_tokens: bool = False  # refresh tokens without offline_access, ending with the session
    # RFC 8705 §2.1.2: tls_client_auth — the subject DN (RFC 4514) of the certificate the client presents
    tls_client_auth_subject_dn: str | None = Field(default=None, max_length=1024)
    backchannel_logout_uri: str | None = Field(default=None, max_length=1024)
    backchannel_logout_session_required: bool = False
    frontchannel_logout_uri: str | None = Field(default=None, max_length=1024)
    frontchannel_logout_session_required: bool = False
    # An administrator allowed this client the whole ID number (still only after the person consents).
    release_id_number: bool = False
    # Dynamic registration (RFC 7591/7592, OIDC Registration 1.0)
    application_type: str = Field(default="web", max_length=16)  # web | native
    registration_access_digest: str | None = Field(default=None, max_length=128)  # None: not self-registered
    sector_identifier_uri: str | None = Field(default=None, max_length=1024)
    client_uri: str | None = Field(default=None, max_length=1024)
    logo_uri: str | None = Field(default=None, max_length=1024)
    policy_uri: str | None = Field(default=None, max_length=1024)
    tos_uri: str | None = Field(default=None, max_length=1024)
    contacts: list[str] = json_list()
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: every token request must carry a DPoP proof
    minimum_acr: str | None = Field(default=None, max_length=255)  # every login for this client reaches it
    # RFC 7523 client authentication and RFC 9101 request objects: the client's public keys, inline or
    # by URL, and the algorithms it registered
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    jwks_uri: str | None = Field(default=None, max_length=1024)
    token_endpoint_auth_signing_alg: str | None = Field(default=None, max_length=16)
    request_object_signing_alg: str | None = Field(default=None, max_length=16)
    request_uris: list[str] = json_list()
    require_pushed_authorization_requests: bool = False
    # client_secret_jwt needs the secret itself (HMAC key): AEAD-sealed, bound to the client_id
    secret_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = when()
    updated_at: datetime = when()
