"""Refresh-token families: issued per login, rotated on every use, revoked whole on reuse.

RFC 9700 §4.14.2: a refresh token is single use. Presenting one that was already rotated means two
parties hold it, so the whole family (every token of that login) and the access tokens issued with
it are revoked. One exception keeps honest clients working: a client that refreshes twice at once
(two tabs, a retry after a lost response) presents the same token twice within milliseconds. If the
second use comes within `YIHAO_REFRESH_REUSE_GRACE` seconds of the first *and no successor has been
used yet*, it gets a sibling token instead of a revocation. Once any successor has been used, the
old token is dead for good, so a thief replaying a stolen token later still trips the detector. Of two
siblings (grace twins) the first used lives on and the other is dead: two live branches are theft.

Concurrency: the common rotation is one conditional UPDATE … RETURNING, whose row lock lets a single
request through per token. A token with a twin is not spent by it: choosing between twins, like
deciding whether a late use gets a sibling, reads other rows, which a statement under READ COMMITTED
sees only once committed, so those decisions (`_unusual`) first lock the rows they read.

Tokens are stored by digest. The family id is the grant id that access tokens carry as `gid`, so
`TokenIssuer.revoke_grant(family_id)` stops those too. A family not tied to `offline_access` lives
only as long as the SSO session (`sid`) it came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import Engine, and_, bindparam, exists, false, insert, or_, select, update

from idp import events
from idp.crypto import digest, random_token
from idp.db import DriverStatement
from idp.models import RefreshToken
from idp.models._base import aware, new_id, utcnow
from idp.sessions import Sessions
from idp.settings import Settings
from idp.tokens import Authentication, TokenIssuer

T = RefreshToken.__table__
_R = T.alias("sibling")  # the same family's other tokens, inside a statement on T

# The hot statements are built once: building one per call (and its cache key) cost several times its
# execution. Values travel as bind parameters. The two of every rotation are compiled once per dialect
# and skip SQLAlchemy's per-execution parameter and row processing (see `DriverStatement`).
_ADD = DriverStatement(insert(T), columns=[column.key for column in T.c])
_DIGEST = T.c.token_digest == bindparam("p_digest")
_SIBLING = and_(_R.c.parent_id == T.c.parent_id, _R.c.id != T.c.id)  # a grace twin of the token
_UNSPENT = (
    T.c.consumed_at.is_(None), T.c.revoked_at.is_(None),
    T.c.expires_at > bindparam("p_now"), T.c.family_expires_at > bindparam("p_now"),
    ~exists().where(_R.c.family_id == T.c.family_id, _R.c.revoked_at.is_not(None)),
)
# What makes a token usable: what introspection (`find`) reports and a grace twin's spend requires.
# A grace sibling is dead once its twin was used: two live branches are theft.
_LIVE = (*_UNSPENT, ~exists().where(_SIBLING, _R.c.consumed_at.is_not(None)))
# The common rotation: `_LIVE` for a token without any twin (the same seek of the parent's index); a token
# with one is spent under a lock (`_unusual`). The token is found by its digest alone. Its client is
# compared once the row is back: with the client in the WHERE clause, PostgreSQL, on a table whose
# statistics are not yet current, seeked the client's index and filtered every token of the client
# (one relying party holds most of them) on each rotation.
_SPEND = DriverStatement(update(T).where(_DIGEST, *_UNSPENT, ~exists().where(_SIBLING))
                         .values(consumed_at=bindparam("p_now")).returning(*T.c), returns=list(T.c))
_SPEND_TWIN = update(T).where(_DIGEST, *_LIVE).values(consumed_at=bindparam("p_now")).returning(*T.c)
_FIND = select(T).where(_DIGEST, *_LIVE)
_BY_DIGEST = select(T).where(_DIGEST)
_FAMILY_REVOKED = select(exists().where(T.c.family_id == bindparam("p_family"), T.c.revoked_at.is_not(None)))
# What an unusual use decides on: the token, its parent, the parent's children (the token and its twins)
# and the token's children. A statement that locks several rows of a family takes them all at once, in
# id order, holding no other (`_REVOKE` too): so none waits for a row while holding one another wants.
_NEIGHBOURS = select(T).where(or_(
    T.c.id == bindparam("p_id"), T.c.id == bindparam("p_parent"),
    T.c.parent_id == bindparam("p_id"), T.c.parent_id == bindparam("p_parent"),
)).order_by(T.c.id).with_for_update()
# SQLite has no row locks: a write, even of no row, takes the database's write lock until the commit
_WRITE_LOCK = update(T).where(false()).values(consumed_at=T.c.consumed_at)
_REVOKE = update(T).where(T.c.id.in_(
    select(T.c.id).where(T.c.family_id == bindparam("p_family"), T.c.revoked_at.is_(None))
    .order_by(T.c.id).with_for_update()
)).values(revoked_at=bindparam("p_now"))


class RefreshRejected(Exception):
    """The presented refresh token cannot be used; the message is safe to show the client."""


INVALID = "the refresh token is invalid, expired or revoked"


@dataclass(frozen=True)
class Family:
    """What a refresh token stands for: one login's grant to one client."""

    family_id: str
    client_id: str
    account_id: str
    scope: str
    resources: tuple[str, ...]
    sid: str | None
    offline: bool
    auth: Authentication
    issued_at: datetime
    expires_at: datetime
    dpop_jkt: str | None = None  # RFC 9449 §5: refreshed only with a proof of this key


def _family(row: Any) -> Family:
    auth = Authentication.from_json({**row.auth, "a": row.account_id, "s": row.sid or "", "g": row.family_id})
    return Family(row.family_id, row.client_id, row.account_id, row.scope,
                  tuple((row.audience or "").split()), row.sid, row.offline, auth,
                  aware(row.issued_at), min(aware(row.expires_at), aware(row.family_expires_at)), row.dpop_jkt)


class RefreshTokens:
    def __init__(self, engine: Engine, sessions: Sessions, issuer: TokenIssuer, settings: Settings) -> None:
        self._engine = engine
        self._sessions = sessions
        self._issuer = issuer
        self._idle = timedelta(seconds=settings.refresh_token_idle_ttl)
        self._max = timedelta(seconds=settings.refresh_token_max_ttl)
        self._grace = timedelta(seconds=settings.refresh_reuse_grace)
        self._row_locks = engine.dialect.name != "sqlite"

    def issue(self, client_id: str, auth: Authentication, scope: str, resources: tuple[str, ...],
              offline: bool, dpop_jkt: str | None = None) -> str:
        """Start a family for a login's grant (the family id is the grant id), bound to a DPoP key
        when `dpop_jkt` is given."""
        now = utcnow()
        token = random_token(32)
        with self._engine.begin() as conn:
            _ADD.execute(conn, dict(
                id=new_id(), token_digest=digest(token), family_id=auth.grant_id, parent_id=None,
                client_id=client_id, account_id=auth.account_id, scope=scope, audience=" ".join(resources) or None,
                sid=auth.sid or None, offline=offline, auth=_auth_json(auth), issued_at=now,
                expires_at=min(now + self._idle, now + self._max), family_expires_at=now + self._max,
                consumed_at=None, revoked_at=None, dpop_jkt=dpop_jkt))
        if self._issuer.grant_revoked(auth.grant_id):  # the grant was revoked while this was issued (code reuse)
            self.revoke_family(auth.grant_id)
        return token

    def rotate(self, token: str, client_id: str,
               check: Callable[[Family], Any] = lambda family: None) -> tuple[str, Family]:
        """Spend `token` and return its successor, or raise RefreshRejected (revoking on reuse).

        `check` vets the request against the family before anything is spent; what it raises
        leaves the token unspent. The common case is one conditional UPDATE … RETURNING (the single
        winner under concurrency) and one INSERT; everything unusual takes the slow path."""
        now = utcnow()
        with self._engine.begin() as conn:
            row = _SPEND.execute(conn, {"p_digest": digest(token), "p_now": now})
            if row is not None:
                if row.client_id != client_id:
                    raise RefreshRejected(INVALID)  # leaving the block rolls the spend back
                family = _family(row)
                outcome, successor = self._renew(conn, "spent", row, family, now, check)
        if row is None:
            # A transaction of its own, holding no lock when `_unusual` takes its own in one go: the UPDATE
            # that found nothing may hold the token's row (READ COMMITTED locks a row updated meanwhile to
            # recheck it, and keeps the lock when the recheck fails).
            with self._engine.begin() as conn:
                outcome, row = self._unusual(conn, token, client_id, now)
                family = _family(row)
                outcome, successor = self._renew(conn, outcome, row, family, now, check)
        if successor is not None:
            return successor, family
        self.revoke_family(row.family_id)
        if outcome == "reused":
            events.record(events.REFRESH_TOKEN_REUSED, outcome="failure", subject=row.account_id,
                          client_id=client_id)
            raise RefreshRejected("the refresh token was already used; its grant has been revoked")
        raise RefreshRejected("the session this refresh token belonged to has ended")

    def _renew(self, conn: Any, outcome: str, row: Any, family: Family, now: datetime,
               check: Callable[[Family], Any]) -> tuple[str, str | None]:
        """The successor of a spent token, or the sibling of a just-rotated one, once `check` passed;
        none for an ended session or any other outcome."""
        if outcome not in ("spent", "sibling"):
            return outcome, None
        check(family)
        if outcome == "spent" and not family.offline and not self._sessions.alive(family.sid):
            return "session ended", None
        return outcome, self._successor(conn, row, now)

    def _unusual(self, conn: Any, token: str, client_id: str, now: datetime) -> tuple[str, Any]:
        """Why the token could not simply be spent: invalid (raises), an ended session, a grace twin
        (spent here, if its twin was not), a concurrent refresh within the grace (a sibling), or reuse."""
        row = conn.execute(_BY_DIGEST, {"p_digest": digest(token)}).first()
        if row is None or row.client_id != client_id:
            raise RefreshRejected(INVALID)
        family = _family(row)
        revoked = conn.execute(_FAMILY_REVOKED, {"p_family": row.family_id}).scalar()
        if revoked or family.expires_at <= now:
            raise RefreshRejected(INVALID)
        if not family.offline and not self._sessions.alive(family.sid):
            return "session ended", row
        row = self._lock_neighbours(conn, row)
        if row.consumed_at is None:  # unspent, yet the common rotation left it: it has a twin
            spent = conn.execute(_SPEND_TWIN, {"p_digest": row.token_digest, "p_now": now}).first()
            if spent is not None:
                return "spent", spent
        if not self._within_grace(conn, row, now):
            return "reused", row  # decided before the request's own checks, so they cannot probe it
        return "sibling", row

    def _lock_neighbours(self, conn: Any, row: Any) -> Any:
        """Lock what a twin's spend or a sibling's creation decides on, and return the token's row as it
        is now. RFC 9700 §4.14.2: twins spent at once must not both win, nor two late uses of one token
        both get a sibling; the statements after the lock see what the other committed, and a rotation
        of a neighbour still in flight is waited for."""
        if self._row_locks:
            rows = conn.execute(_NEIGHBOURS, {"p_id": row.id, "p_parent": row.parent_id}).all()
            mine = next((found for found in rows if found.id == row.id), None)
        else:
            conn.execute(_WRITE_LOCK)
            mine = conn.execute(_BY_DIGEST, {"p_digest": row.token_digest}).first()
        if mine is None:  # deleted with its client meanwhile
            raise RefreshRejected(INVALID)
        return mine

    def _successor(self, conn: Any, row: Any, now: datetime) -> str:
        successor = random_token(32)
        _ADD.execute(conn, dict(
            id=new_id(), token_digest=digest(successor), family_id=row.family_id, parent_id=row.id,
            client_id=row.client_id, account_id=row.account_id, scope=row.scope, audience=row.audience,
            sid=row.sid, offline=row.offline, auth=row.auth, issued_at=now,
            expires_at=min(now + self._idle, aware(row.family_expires_at)), family_expires_at=row.family_expires_at,
            consumed_at=None, revoked_at=None, dpop_jkt=row.dpop_jkt))
        return successor

    def _within_grace(self, conn: Any, row: Any, now: datetime) -> bool:
        """A second use of a just-rotated token whose successors are all still unused (a concurrent refresh)."""
        consumed = row.consumed_at
        if not self._grace or consumed is None or now - aware(consumed) > self._grace:
            return False
        children = conn.execute(select(T.c.consumed_at).where(T.c.parent_id == row.id)).scalars().all()
        return len(children) == 1 and children[0] is None  # one unused successor: one sibling at most

    def find(self, token: str) -> Family | None:
        """The family of a live refresh token (what a refresh would accept), for introspection."""
        with self._engine.connect() as conn:
            row = conn.execute(_FIND, {"p_digest": digest(token), "p_now": utcnow()}).first()
        if row is None:
            return None
        family = _family(row)
        if not family.offline and not self._sessions.alive(family.sid):
            return None
        return family

    def revoke(self, token: str, client_id: str) -> bool:
        """RFC 7009: revoking a refresh token revokes its family. False when it is not the client's."""
        with self._engine.connect() as conn:
            row = conn.execute(select(T.c.family_id, T.c.client_id).where(T.c.token_digest == digest(token))).first()
        if row is None or row.client_id != client_id:
            return False
        self.revoke_family(row.family_id)
        return True

    def revoke_family(self, family_id: str) -> None:
        """Every refresh token of the family, and every access token issued under it, stops working."""
        # The store mark comes first: a family being issued concurrently checks it after its insert.
        self._issuer.revoke_grant(family_id)
        with self._engine.begin() as conn:
            conn.execute(_REVOKE, {"p_family": family_id, "p_now": utcnow()})

    def offline(self, family_id: str) -> bool:
        """True when this grant has an offline_access family (it outlives the session)."""
        with self._engine.connect() as conn:
            return bool(conn.execute(select(T.c.offline).where(T.c.family_id == family_id).limit(1)).scalar())

    def revoke_session(self, sid: str) -> int:
        """End the session-bound families of an SSO session (logout); offline ones live on."""
        with self._engine.connect() as conn:
            families = conn.execute(select(T.c.family_id).distinct().where(
                and_(T.c.sid == sid, T.c.offline.is_(False), T.c.revoked_at.is_(None)))).scalars().all()
        for family_id in families:
            self.revoke_family(family_id)
        return len(families)


def _auth_json(auth: Authentication) -> dict[str, Any]:
    # account, sid and family are columns of their own; the rest (acr, requested claims) rides along
    return {k: v for k, v in auth.to_json().items() if k not in ("a", "s", "g")}
