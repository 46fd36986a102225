"""Partner rules: which subject-token issuers, token types, audiences and scopes a partner client may
use in a token exchange (RFC 8693) or a JWT bearer grant (RFC 7523). No rule, no exchange."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from federation.models import PartnerRule
from idp import db
from idp.models._base import utcnow

SELF = "self"  # in subject_issuers / actor_issuers: tokens Yihao itself issued
TOKEN_TYPES = {
    "access_token": "urn:ietf:params:oauth:token-type:access_token",
    "id_token": "urn:ietf:params:oauth:token-type:id_token",
    "jwt": "urn:ietf:params:oauth:token-type:jwt",
}
CACHE_SECONDS = 5.0  # a changed rule reaches every worker within this time


@dataclass(frozen=True)
class Rule:
    client_id: str
    subject_issuers: frozenset[str]
    token_types: frozenset[str]
    audiences: tuple[str, ...]
    scopes: frozenset[str]
    actor_issuers: frozenset[str]
    self_clients: frozenset[str] = frozenset()  # other clients whose tokens from this provider it may present

    def may_present(self, issued_to: str) -> bool:
        """Whether a token this provider issued to `issued_to` may be presented by this partner."""
        return issued_to == self.client_id or issued_to in self.self_clients


_COLUMNS = (PartnerRule.client_id, PartnerRule.subject_issuers, PartnerRule.token_types, PartnerRule.audiences,
            PartnerRule.scopes, PartnerRule.actor_issuers, PartnerRule.self_clients)
# A read on the token path: through db.Reads, so a connection the database dropped is retried.
_BY_CLIENT = select(*_COLUMNS).where(PartnerRule.client_id == bindparam("client_id"))


class Partners:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._reads = db.Reads(engine)
        self._cache: dict[str, tuple[float, Rule | None]] = {}

    def set(self, client_id: str, *, subject_issuers: Iterable[str] = (), token_types: Iterable[str] = (),
            audiences: Iterable[str] = (), scopes: Iterable[str] = (), actor_issuers: Iterable[str] = (),
            self_clients: Iterable[str] = ()) -> Rule:
        """Create or replace the partner's rule; token types by short name (access_token, id_token, jwt).
        With SELF among its subject issuers it may present this provider's tokens issued to itself, and
        to the clients in `self_clients`."""
        types = [TOKEN_TYPES.get(t, t) for t in token_types]
        unknown = set(types) - set(TOKEN_TYPES.values())
        if unknown:
            raise ValueError(f"token type {sorted(unknown)[0]!r} is not one of {', '.join(TOKEN_TYPES)}")
        row = PartnerRule(client_id=client_id, subject_issuers=sorted(set(subject_issuers)), token_types=sorted(set(types)),
                          audiences=list(dict.fromkeys(audiences)), scopes=sorted(set(scopes)),
                          actor_issuers=sorted(set(actor_issuers)), self_clients=sorted(set(self_clients)),
                          updated_at=utcnow())
        with self._sessions() as session, session.begin():
            session.merge(row)
        self._cache.pop(client_id, None)
        return _rule(row)

    def get(self, client_id: str) -> Rule | None:
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        row = self._reads.first(_BY_CLIENT, {"client_id": client_id})
        rule = _from_columns(*row) if row is not None else None
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[client_id] = (time.monotonic() + CACHE_SECONDS, rule)
        return rule


def _rule(row: PartnerRule) -> Rule:
    return _from_columns(*(getattr(row, column.key) for column in _COLUMNS))


def _from_columns(client_id: str, subject_issuers: list[str], token_types: list[str], audiences: list[str],
                  scopes: list[str], actor_issuers: list[str], self_clients: list[str]) -> Rule:
    return Rule(client_id, frozenset(subject_issuers), frozenset(token_types), tuple(audiences), frozenset(scopes),
                frozenset(actor_issuers), frozenset(self_clients))
