"""Federation: upstream identity providers, account links, partner token exchange."""
from __future__ import annotations

from sqlalchemy import Engine

from federation.linking import Links
from federation.partners import Partners
from federation.upstream import Upstreams
from idp.crypto import MasterKey
from idp.store.ephemeral import EphemeralStore


class Federation:
    """The federation parts of one worker's core."""

    def __init__(self, engine: Engine, master: MasterKey, store: EphemeralStore, *, timeout: float) -> None:
        self.timeout = timeout
        self.upstreams = Upstreams(engine, master, store, timeout=timeout)
        self.links = Links(engine)
        self.partners = Partners(engine)

    def close(self) -> None:
        self.upstreams.close()
