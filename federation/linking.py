"""Which local account an upstream login is: links, and the rules that make them.

A link is made only (1) on the verified ID number's blind index, when the upstream is trusted for
`id_number` at identity level 2 or above, (2) after the person signs in to the local account to
confirm it, or (3) by creating an account, when the upstream's policy allows it. Never on e-mail,
phone or name: those are the claims account-takeover attacks on brokers ride on. Every link and
unlink is audited.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from federation.models import UpstreamLink
from federation.upstream import UpstreamConfig
from idp import db, events
from idp.crypto import random_token
from idp.models import Account
from idp.models._base import aware, utcnow
from idp.verified_claims import ID_NUMBER as VERIFIED_ID_NUMBER
from realname.errors import ValidationError
from realname.identity import IdentityTaken
from realname.pii import IdNumber

ID_NUMBER = "id_number"  # in an upstream's trust policy; also the plain claim some upstreams send
MIN_LEVEL_FOR_ID_NUMBER = 2  # an L1 (self-asserted) number proves nothing about who this is


@dataclass(frozen=True)
class Link:
    id: str
    upstream: str
    subject: str
    account_id: str
    linked_by: str
    created_at: datetime


@dataclass(frozen=True)
class Asserted:
    """What the upstream says about the person that we accept from it, under its trust policy."""

    id_number: IdNumber | None
    level: int  # the identity level this login may give the account (1 when nothing is trusted)
    untrusted: tuple[str, ...]  # claims it asserted that it is not trusted for (audited, then ignored)
    name: str | None
    email: str | None = None  # kept on an account it creates; never used to find one
    phone_number: str | None = None


@dataclass(frozen=True)
class Decision:
    """The account this login is, or that the person must sign in locally to confirm a link."""

    account_id: str | None
    how: str  # linked | id_number | created | confirm


class LinkTaken(Exception):
    """The upstream subject, or this account's link to that upstream, already exists."""


def _level(value: Any) -> int | None:
    """An identity level as upstreams write it: 2, "2", "L2", "loa/2"."""
    text = str(value).strip().lower().removeprefix("loa/").removeprefix("l")
    return int(text) if text in ("1", "2", "3", "4") else None


def asserted(upstream: UpstreamConfig, claims: dict[str, Any]) -> Asserted:
    """The claims this upstream is trusted for, from the ID token: OIDC4IDA verified_claims (a Yihao
    upstream's `urn:yihao:claims:id_number`, or `id_number`), else the top level."""
    verified = claims.get("verified_claims") if isinstance(claims.get("verified_claims"), dict) else {}
    inner = verified.get("claims") if isinstance(verified.get("claims"), dict) else {}
    verification = verified.get("verification") if isinstance(verified.get("verification"), dict) else {}
    raw = inner.get(VERIFIED_ID_NUMBER, inner.get(ID_NUMBER, claims.get(ID_NUMBER)))
    name = inner.get("name", claims.get("name"))
    contact = {c: claims.get(c) for c in ("email", "phone_number")}
    if claims.get("email_verified") is False:  # OIDC Core §5.1: the upstream itself does not vouch for it
        contact["email"] = None
    asserted_claims = ((ID_NUMBER, raw), ("name", name), *contact.items())
    untrusted = tuple(c for c, v in asserted_claims if v is not None and not upstream.trusted_for(c))
    trusted = {c: v if isinstance(v, str) and 0 < len(v) <= 255 and upstream.trusted_for(c) else None
               for c, v in contact.items()}
    stated = _level(verification.get("assurance_level"))
    level = min(upstream.identity_level, stated or upstream.identity_level)
    number = None
    if raw is not None and upstream.trusted_for(ID_NUMBER) and level >= MIN_LEVEL_FOR_ID_NUMBER:
        try:
            number = IdNumber.parse(str(raw))
        except ValidationError:
            number = None  # an invalid number is no evidence of anything
    return Asserted(number, level if number is not None else 1, untrusted,
                    name if isinstance(name, str) and upstream.trusted_for("name") else None,
                    trusted["email"], trusted["phone_number"] if len(trusted["phone_number"] or "") <= 32 else None)


_BY_SUBJECT = select(UpstreamLink.account_id).where(UpstreamLink.upstream == bindparam("upstream"),
                                                     UpstreamLink.subject == bindparam("subject"))


class Links:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._reads = db.Reads(engine)

    def find(self, upstream: str, subject: str, *, touch: bool = False) -> str | None:
        """The account linked to this upstream subject; `touch` notes the use (a login, not a token exchange,
        which must not write on every call)."""
        where = (UpstreamLink.upstream == upstream, UpstreamLink.subject == subject)
        if not touch:
            row = self._reads.first(_BY_SUBJECT, {"upstream": upstream, "subject": subject})
            return row[0] if row is not None else None
        with self._sessions() as session, session.begin():
            return session.execute(update(UpstreamLink).where(*where).values(last_used_at=utcnow())
                                   .returning(UpstreamLink.account_id)).scalar()

    def create(self, upstream: str, subject: str, account_id: str, linked_by: str, *, actor: str | None = None) -> Link:
        row = UpstreamLink(upstream=upstream, subject=subject, account_id=account_id, linked_by=linked_by,
                           last_used_at=utcnow())
        try:
            with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise LinkTaken(f"{upstream} already has a link for this subject or account") from None
        events.record(events.ACCOUNT_LINKED, subject=account_id, actor=actor, upstream=upstream, linked_by=linked_by,
                      link=row.id)
        return _link(row)

    def of_account(self, account_id: str) -> list[Link]:
        with self._sessions() as session:
            rows = session.execute(select(UpstreamLink).where(UpstreamLink.account_id == account_id)
                                   .order_by(UpstreamLink.created_at)).scalars().all()
        return [_link(r) for r in rows]

    def all(self, upstream: str | None = None) -> list[Link]:
        statement = select(UpstreamLink).order_by(UpstreamLink.created_at)
        if upstream is not None:
            statement = statement.where(UpstreamLink.upstream == upstream)
        with self._sessions() as session:
            return [_link(r) for r in session.execute(statement).scalars().all()]

    def remove(self, link_id: str, *, account_id: str | None = None, actor: str | None = None) -> bool:
        """Remove a link; with `account_id`, only if it is that account's (a person removing their own)."""
        statement = delete(UpstreamLink).where(UpstreamLink.id == link_id)
        if account_id is not None:
            statement = statement.where(UpstreamLink.account_id == account_id)
        with self._sessions() as session, session.begin():
            removed = session.execute(statement.returning(UpstreamLink.account_id, UpstreamLink.upstream)).first()
        if removed is None:
            return False
        events.record(events.ACCOUNT_UNLINKED, subject=removed[0], actor=actor or removed[0], upstream=removed[1],
                      link=link_id)
        return True


def _link(row: UpstreamLink) -> Link:
    return Link(row.id, row.upstream, row.subject, row.account_id, row.linked_by, aware(row.created_at))


def resolve(core: Any, upstream: UpstreamConfig, subject: str, claims: Asserted) -> Decision:
    """The account for this upstream login under the upstream's policy (see the module docstring)."""
    links: Links = core.federation.links
    account_id = links.find(upstream.slug, subject, touch=True)
    if account_id is not None:
        return Decision(account_id, "linked")
    if claims.id_number is not None:
        account_id = core.identities.find_person(claims.id_number)
        if account_id is not None:
            core.identities.raise_level(account_id, claims.level, source=f"upstream:{upstream.slug}")
            return _linked(links, upstream, subject, account_id, "id_number")
    if upstream.may_create:
        try:
            account_id = create_account(core, upstream, claims)
        except IdentityTaken as taken:  # the same person's concurrent first login bound the number first
            return _linked(links, upstream, subject, taken.account_id, "id_number")
        return _linked(links, upstream, subject, account_id, "created")
    return Decision(None, "confirm")


def _linked(links: Links, upstream: UpstreamConfig, subject: str, account_id: str, how: str) -> Decision:
    try:
        links.create(upstream.slug, subject, account_id, how)
    except LinkTaken:  # a concurrent first login of the same person made it: use theirs
        found = links.find(upstream.slug, subject)
        if found is None:  # the account is linked to another subject of this upstream: a person must look
            return Decision(None, "confirm")
        return Decision(found, "linked")
    return Decision(account_id, how)


def create_account(core: Any, upstream: UpstreamConfig, claims: Asserted) -> str:
    """A password-less person account for a first upstream login, with the identity it is trusted for."""
    row = Account(username=f"{upstream.slug}-{random_token(9).lower().replace('_', '.')}", name=claims.name,
                  email=claims.email, email_verified=claims.email is not None,
                  phone_number=claims.phone_number, phone_number_verified=claims.phone_number is not None)
    account_id = row.id
    with Session(core.engine) as session, session.begin():
        session.add(row)
    if claims.id_number is not None:
        try:
            core.identities.bind_person(account_id, claims.id_number, level=claims.level,
                                        source=f"upstream:{upstream.slug}")
        except BaseException:
            with Session(core.engine) as session, session.begin():  # no half-made account stays behind
                session.execute(delete(Account).where(Account.id == account_id))
            core.accounts.changed(account_id)
            raise
    events.record(events.ACCOUNT_CREATED, subject=account_id, upstream=upstream.slug)
    return account_id
