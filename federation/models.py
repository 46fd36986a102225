"""Federation tables: upstream identity providers, links from upstream subjects to accounts, partner rules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from idp.models._base import json_dict, json_list, new_id, when


class Upstream(SQLModel, table=True):
    """A provider people may log in with, and how far its word is trusted: an OpenID Connect provider
    (`oidc`, by its issuer's discovery) or a plain OAuth 2 one (`oauth2`: its endpoints, and a mapping
    from its userinfo answer to our claims)."""

    slug: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=255)
    kind: str = Field(default="oidc", max_length=16)  # oidc | oauth2
    issuer: str | None = Field(default=None, unique=True, max_length=255)  # oidc only
    # oauth2 only: where its endpoints are, and which userinfo field (a dotted path) each of our claims is
    authorization_endpoint: str | None = Field(default=None, max_length=1024)
    token_endpoint: str | None = Field(default=None, max_length=1024)
    userinfo_endpoint: str | None = Field(default=None, max_length=1024)
    claim_map: dict = json_dict()
    token_auth: str = Field(default="client_secret_basic", max_length=32)  # or client_secret_post
    client_id: str = Field(max_length=255)
    client_secret_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    master_key_id: str = Field(max_length=16)
    scope: str = Field(default="openid profile", max_length=1024)
    # Trust policy: claims it is trusted for, the identity level its verified identities reach,
    # how its acr values map to ours, whether a first login with no match may create an account.
    trusted_claims: list[str] = json_list()
    identity_level: int = 1
    acr_map: dict = json_dict()
    may_create: bool = False
    algorithms: list[str] = json_list()
    end_session: bool = False  # local logout also ends the upstream session (RP-Initiated Logout)
    enabled: bool = True
    created_at: datetime = when()


class UpstreamLink(SQLModel, table=True):
    """This account is the person the upstream knows as `subject`; how the link was made."""

    __tablename__ = "upstream_link"
    __table_args__ = (UniqueConstraint("upstream", "subject", name="uq_upstream_link_subject"),
                      UniqueConstraint("upstream", "account_id", name="uq_upstream_link_account"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    upstream: str = Field(foreign_key="upstream.slug", max_length=32)
    subject: str = Field(max_length=255)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    linked_by: str = Field(max_length=16)  # id_number | login | created
    created_at: datetime = when()
    last_used_at: datetime | None = when(nullable=True)


class PartnerRule(SQLModel, table=True):
    """What a partner client may exchange (RFC 8693) or assert (RFC 7523), and for what."""

    __tablename__ = "partner_rule"

    client_id: str = Field(foreign_key="client.client_id", primary_key=True, max_length=64)
    subject_issuers: list[str] = json_list()  # issuers whose tokens it may present ("self" = Yihao)
    token_types: list[str] = json_list()  # subject_token_type values it may present
    audiences: list[str] = json_list()  # audiences it may ask tokens for
    scopes: list[str] = json_list()  # scopes it may ask for
    actor_issuers: list[str] = json_list()  # issuers of actor tokens (delegation); empty = none
    # Tokens this provider issued to these other clients it may present too (its own always, with "self")
    self_clients: list[str] = json_list()
    # Unused, always False: migration 0012 made it NOT NULL. A client learns the whole ID number only
    # through verified_claims (client.release_id_number and the person's consent), never by a partner rule.
    release_identity: bool = False
    updated_at: datetime = when()
