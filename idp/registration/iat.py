"""Initial access tokens (RFC 7591 §3): issued by an administrator, single use or counted, expiring."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session

from idp.crypto import digest, random_token
from idp.models import InitialAccessToken
from idp.models._base import aware, utcnow


class TokenSpent(Exception):
    """The initial access token was used up or expired while the registration was being checked."""


@dataclass(frozen=True)
class Grant:
    """What a live initial access token allows."""

    digest: str
    allow_public_subject: bool


def issue(engine: Engine, *, uses: int = 1, ttl: int = 86400, allow_public_subject: bool = False) -> tuple[str, datetime]:
    """A new token good for `uses` registrations within `ttl` seconds; the token is shown this once."""
    token = random_token(32)
    expires_at = utcnow() + timedelta(seconds=ttl)
    with Session(engine) as session, session.begin():
        session.add(InitialAccessToken(digest=digest(token), uses_left=uses, expires_at=expires_at,
                                       allow_public_subject=allow_public_subject))
    return token, expires_at


def check(engine: Engine, token: str) -> Grant | None:
    """The grant of a live token (not expired, uses left); None otherwise. Nothing is spent."""
    with Session(engine) as session:
        row = session.get(InitialAccessToken, digest(token))
        if row is None or row.uses_left < 1 or aware(row.expires_at) <= utcnow():
            return None
        return Grant(row.digest, row.allow_public_subject)


def spend(session: Session, grant: Grant) -> None:
    """Use the token once, inside the registration's transaction: of concurrent spenders of the last
    use exactly one succeeds (a conditional UPDATE), the others raise TokenSpent."""
    result = session.execute(update(InitialAccessToken)
                             .where(InitialAccessToken.digest == grant.digest,  # type: ignore[arg-type]
                                    InitialAccessToken.uses_left > 0,  # type: ignore[arg-type]
                                    InitialAccessToken.expires_at > utcnow())  # type: ignore[arg-type]
                             .values(uses_left=InitialAccessToken.uses_left - 1))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenSpent()
