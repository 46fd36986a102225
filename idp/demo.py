"""The demo relying party at /demo: a real OAuth client (authlib) running the code flow with PKCE.

It talks to the provider over HTTP like any other relying party, validates the ID token against
the published JWKS, and shows the claims and the userinfo response.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import warnings

with warnings.catch_warnings():  # authlib nudges towards the httpx2 fork; httpx is what we ship
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp.core import Core
from idp.crypto import b64u, random_token
from idp.verified_claims import ID_NUMBER
from idp.interaction.pages import render
from idp.interaction.web import page_locale
from idp.models import Client
from idp.store.ephemeral import put_json, take_json
from realname.enterprises import ENTERPRISE_CLAIM
from realname.pii import CreditCode, IdNumber
from realname.registry.importer import Importer

CLIENT_ID = "yihao-demo"
USERNAME = "citizen"
PASSWORD = "yihao-demo-2026"
STATE_TTL = 600
SCOPE = "openid profile email phone"
# The demo's people and enterprise: synthetic identifiers (made by the algorithms, belonging to no
# one), in the local registries so that sign-up and verification run for real.
CITIZEN_NAME, CITIZEN_ID = "张三", "350102199003070012"  # the demo citizen, verified at L2
NEWCOMER_NAME, NEWCOMER_ID = "韩梅梅", "35010420000229002X"  # in the registry, no account: sign up as her
ENTERPRISE_NAME, ENTERPRISE_CODE = "福州一号示范科技有限公司", "91350102MA2Y0001X6"  # the demo citizen is its agent
# What the demo relying party asks for: the verified name and identity level, in both places.
VERIFIED_CLAIMS = {"verification": {"trust_framework": None, "assurance_level": None, "time": None, "evidence": None},
                   "claims": {"name": None, "birthdate": None, ID_NUMBER: None}}
CLAIMS = json.dumps({"id_token": {"verified_claims": VERIFIED_CLAIMS}, "userinfo": {"verified_claims": VERIFIED_CLAIMS}})
DEMO_LEVEL = 3  # and verified in person at a service counter: loa/3 takes a second factor
STEP_UP = "loa/3"  # what the demo's second button asks for


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str
    client_id: str
    newcomer: tuple[str, str] = (NEWCOMER_NAME, NEWCOMER_ID)


def demo_secret(core: Core) -> str:
    """The demo client's secret, derived from the master key so every worker knows it."""
    return b64u(core.master.derive("demo-client-secret"))


def seed_demo(core: Core) -> DemoCredentials:
    """Create the demo citizen and the demo relying party if they do not exist (idempotent)."""
    from sqlmodel import Session

    from idp.accounts import AccountInputError
    from idp.crypto import digest

    _seed_registries(core)
    try:
        core.accounts.create(USERNAME, PASSWORD, name=CITIZEN_NAME, given_name="三", family_name="张",
                             email="citizen@example.gov.cn", email_verified=True, phone_number="+8613800000000",
                             phone_number_verified=True, locale="zh-CN")
    except AccountInputError:
        pass  # already there
    citizen = core.accounts.by_username(USERNAME)
    assert citizen is not None
    if citizen.assurance_level < 2:  # verified against the demo's population registry, like anyone
        core.verification.upgrade(citizen.id, name=CITIZEN_NAME, id_number=IdNumber(CITIZEN_ID), address=None)
    enterprise = core.identities.find_enterprise(CreditCode(ENTERPRISE_CODE))
    if enterprise is None:
        enterprise = core.enterprises.create(CreditCode(ENTERPRISE_CODE)).id
    if not core.enterprises.mandates(citizen.id):
        core.enterprises.add_agent(enterprise, citizen.id, "agent")
    core.identities.raise_level(citizen.id, DEMO_LEVEL, source="demo-service-counter")
    redirect = core.settings.issuer + "/demo/callback"
    with Session(core.engine) as session:
        row = session.get(Client, CLIENT_ID)
        if (row is None or row.redirect_uris != [redirect] or row.secret_digest != digest(demo_secret(core))
                or row.scope != SCOPE + " enterprise"):
            if row is not None:
                session.delete(row)
                session.commit()
            session.add(Client(client_id=CLIENT_ID, name="一号演示应用 Yihao Demo", secret_digest=digest(demo_secret(core)),
                               redirect_uris=[redirect], grant_types=["authorization_code"], response_types=["code"],
                               scope=SCOPE + " enterprise", token_endpoint_auth_method="client_secret_basic"))
            session.commit()
    core.store.incr("clients:version", ttl=10 * 365 * 86400)
    return DemoCredentials(USERNAME, PASSWORD, CLIENT_ID)


def _seed_registries(core: Core) -> None:
    """The demo's people and enterprise in the local registries (re-import updates in place)."""
    people = f"name,id_number\n{CITIZEN_NAME},{CITIZEN_ID}\n{NEWCOMER_NAME},{NEWCOMER_ID}\n"
    entities = f"credit_code,name,legal_representative,status\n{ENTERPRISE_CODE},{ENTERPRISE_NAME},{CITIZEN_NAME},active\n"
    for csv_text in (people, entities):
        Importer(core.engine, core.vault).run(io.StringIO(csv_text))


def _client(request: Request, enterprise: bool = False) -> AsyncOAuth2Client:
    core: Core = request.app.state.core
    return AsyncOAuth2Client(CLIENT_ID, demo_secret(core), scope=SCOPE + (" enterprise" if enterprise else ""),
                             redirect_uri=core.settings.issuer + "/demo/callback",
                             code_challenge_method="S256", timeout=10)


async def home(request: Request) -> Response:
    return render(request, "demo.html", {}, locale=page_locale(request))


async def start(request: Request) -> Response:
    core: Core = request.app.state.core
    verifier, nonce = random_token(48), random_token(16)
    extra = {"acr_values": STEP_UP} if request.query_params.get("acr") == STEP_UP else {}
    async with _client(request, enterprise=request.query_params.get("enterprise") == "1") as client:
        url, state = client.create_authorization_url(core.settings.issuer + "/authorize", code_verifier=verifier,
                                                     nonce=nonce, claims=CLAIMS, **extra)
    await run_in_threadpool(put_json, core.store, f"demo:{state}", {"v": verifier, "n": nonce}, STATE_TTL)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie("yihao_demo_state", state, max_age=STATE_TTL, httponly=True, samesite="lax",
                        secure=core.settings.secure_cookies, path="/demo")
    return response


async def callback(request: Request) -> Response:
    core: Core = request.app.state.core
    locale = page_locale(request)
    state = request.query_params.get("state", "")
    if request.query_params.get("error"):
        return render(request, "demo.html", {"failure": request.query_params["error"]}, locale=locale, status=400)
    if not state or state != request.cookies.get("yihao_demo_state"):
        return render(request, "demo.html", {"failure": "state_mismatch"}, locale=locale, status=400)
    saved = await run_in_threadpool(take_json, core.store, f"demo:{state}")
    if saved is None:
        return render(request, "demo.html", {"failure": "state_expired"}, locale=locale, status=400)
    try:
        claims, userinfo = await _complete(request, saved)
    except (JoseError, ValueError, KeyError) as exc:
        return render(request, "demo.html", {"failure": type(exc).__name__}, locale=locale, status=400)
    level = ((claims.get("verified_claims") or {}).get("verification") or {}).get("assurance_level")
    return render(request, "demo.html", {"claims": _pretty(claims), "userinfo": _pretty(userinfo), "level": level,
                                         "acting": claims.get(ENTERPRISE_CLAIM)}, locale=locale)


async def _complete(request: Request, saved: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    iss = request.app.state.core.settings.issuer
    async with _client(request) as client:
        token = await client.fetch_token(iss + "/token", code=request.query_params.get("code", ""),
                                         code_verifier=saved["v"], grant_type="authorization_code")
        if "error" in token:
            raise ValueError(token["error"])
        jwks = (await client.get(iss + "/jwks")).json()
        decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256", "ES256", "EdDSA"])
        jwt.JWTClaimsRegistry(leeway=5, iss={"essential": True, "value": iss},
                              aud={"essential": True, "value": CLIENT_ID},
                              nonce={"essential": True, "value": saved["n"]},
                              exp={"essential": True}).validate(decoded.claims)
        userinfo = (await client.get(iss + "/userinfo")).json()
    return dict(decoded.claims), userinfo


def _pretty(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


async def crl(request: Request) -> Response:
    """The demo CAs' CRLs (their certificates' distribution points point here)."""
    from idp.demo_pki import crl_file

    found = crl_file(request.app.state.core, request.path_params["name"])
    if found is None:
        return Response(status_code=404)
    return Response(found.read_bytes(), media_type="application/pkix-crl")


def demo_routes() -> list[Route]:
    return [
        Route("/demo/crl/{name}.crl", crl, methods=["GET"], name="demo_crl"),
        Route("/demo", home, methods=["GET"], name="demo"),
        Route("/demo/login", start, methods=["GET"], name="demo_login"),
        Route("/demo/callback", callback, methods=["GET"], name="demo_callback"),
    ]
