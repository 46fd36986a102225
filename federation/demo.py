"""The demo province: a second Yihao, in a thread of `yihao serve --demo`, that the city trusts.

It has its own SQLite database and in-process store, a citizen verified at L2 with a synthetic ID
number, and the city as a client allowed the whole ID number (`release_id_number`: released in
verified_claims after the person consents at the province); the city registers it as the upstream
"province", so its login page shows 使用省统一身份认证平台（演示）登录 / Log in with the province (demo).
It listens on the next port, on `localhost` when the city is on 127.0.0.1 (and the other way round),
because browsers do not tell cookies apart by port.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from idp.crypto import b64u
from idp.settings import Settings

if TYPE_CHECKING:
    from idp.core import Core

SLUG = "province"
NAME = "省统一身份认证平台（演示）Province (demo)"
USERNAME = "province-citizen"
PASSWORD = "province-demo-2026"
ID_NUMBER = "350102199003070012"  # synthetic (reference vectors), belongs to no one
CLIENT_ID = "yihao-city"


@dataclass(frozen=True)
class DemoProvince:
    issuer: str
    username: str
    password: str
    server: Any = None

    def stop(self) -> None:
        self.server.should_exit = True


def province_settings(city: Settings) -> Settings:
    host, port = city.host_port
    other = "localhost" if host in ("127.0.0.1", "0.0.0.0") else "127.0.0.1"
    url = urlsplit(city.issuer)
    issuer = f"{url.scheme}://{other}:{port + 1}"
    return city.replace(issuer=issuer, bind=f"{host if host != '0.0.0.0' else '127.0.0.1'}:{port + 1}",
                        database_url=f"sqlite:///{city.var_dir / 'province.db'}", redis_url=None, workers=1,
                        demo=False)


def start_province(city_settings: Settings) -> DemoProvince:
    """Start the demo province (seeded) in a daemon thread and register it as an upstream of the city."""
    import uvicorn

    from idp.app import create_app
    from idp.cli.http import Protocol
    from idp.core import build_core

    settings = province_settings(city_settings)
    core = build_core(settings, migrate=True)
    secret = b64u(core.master.derive("demo-province-city-secret"))
    _seed(core, city_settings.issuer, secret)
    host, port = settings.host_port
    config = uvicorn.Config(create_app(settings, core), host=host, port=port, log_config=None, access_log=False,
                            http=Protocol, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-province", daemon=True)
    thread.start()
    try:
        _wait(server, thread)
    except RuntimeError:
        core.close()
        raise
    city = build_core(city_settings, migrate=city_settings.embedded)
    try:
        city.federation.upstreams.add(slug=SLUG, name=NAME, issuer=settings.issuer, client_id=CLIENT_ID,
                                      client_secret=secret, trusted_claims=["id_number", "name"], identity_level=2,
                                      acr_map={"loa/1": "loa/1", "loa/2": "loa/2"}, may_create=True,
                                      end_session=True)
    finally:
        city.close()
    return DemoProvince(settings.issuer, USERNAME, PASSWORD, server)


def _wait(server: object, thread: threading.Thread) -> None:
    """Until the province listens; at once if its thread has ended (its port taken): the city must not
    spend its own start-up waiting for a server that is gone."""
    deadline = time.monotonic() + 30
    while not getattr(server, "started", False):
        if not thread.is_alive():
            raise RuntimeError("the demo province did not start (is its port, the city's + 1, taken?)")
        if time.monotonic() > deadline:
            raise RuntimeError("the demo province did not start")
        time.sleep(0.05)


def _seed(core: Core, city_issuer: str, secret: str) -> None:
    """The province's verified citizen and the city as its client (idempotent)."""
    from sqlmodel import Session

    from idp.accounts import AccountInputError
    from idp.crypto import digest
    from idp.models import Client
    from realname.identity import IdentityTaken
    from realname.pii import IdNumber

    try:
        profile = core.accounts.create(USERNAME, PASSWORD, name="陈省民")
        core.identities.bind_person(profile.id, IdNumber.parse(ID_NUMBER), level=2, source="demo-population-registry")
    except (AccountInputError, IdentityTaken):
        pass  # seeded on an earlier start
    with Session(core.engine) as session, session.begin():  # merge: the city's address may have changed
        session.merge(Client(client_id=CLIENT_ID, name="一号（城市）Yihao city", secret_digest=digest(secret),
                             redirect_uris=[city_issuer + "/federation/callback"], grant_types=["authorization_code"],
                             post_logout_redirect_uris=[city_issuer + "/federation/logged-out"],
                             response_types=["code"], scope="openid profile", first_party=True, subject_type="public",
                             backchannel_logout_uri=f"{city_issuer}/federation/{SLUG}/backchannel-logout",
                             backchannel_logout_session_required=True, release_id_number=True))
    core.store.incr("clients:version", ttl=10 * 365 * 86400)
