"""A plain OAuth 2 provider (no discovery, no ID token) as many social and government platforms are:
an authorization endpoint, a token endpoint that checks the client, the code, its redirect_uri and the
PKCE verifier (RFC 7636), and a userinfo endpoint answering nested JSON for a Bearer token."""
from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Person:
    """One of the provider's users, as its userinfo endpoint nests them."""

    uid: int
    name: str = "赵六"
    cert_no: str | None = None
    email: str | None = None

    def userinfo(self) -> dict[str, Any]:
        return {"code": 0, "data": {"user_id": self.uid, "profile": {"real_name": self.name, "cert_no": self.cert_no},
                                    "contacts": [{"type": "email", "value": self.email}]}}


@dataclass
class Behaviour:
    """What the next answers look like; tests change it."""

    userinfo_body: bytes | None = None  # sent as is instead of the person's JSON
    userinfo_status: int = 200
    userinfo_delay: float = 0.0
    authorize_error: str | None = None


@dataclass
class Grant:
    person: Person
    redirect_uri: str
    challenge: str


@dataclass
class OAuth2Upstream:
    url: str
    client_id: str
    client_secret: str
    person: Person = field(default_factory=lambda: Person(uid=secrets.randbelow(10**9)))
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, str]] = field(default_factory=list)  # the authorization requests seen
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/oauth/authorize", self.authorize),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/api/me", self.userinfo),
            Route("/healthz", lambda request: Response("ok")),
        ])

    async def authorize(self, request: Request) -> Response:
        q = dict(request.query_params)
        self.requests.append(q)
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return Response("bad request", status_code=400)
        if self.behaviour.authorize_error:
            return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"error": self.behaviour.authorize_error,
                                                                         "state": q["state"]}))
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(self.person, q["redirect_uri"], q["code_challenge"])
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}))

    async def token(self, request: Request) -> Response:
        form = await request.form()
        client = (form.get("client_id"), form.get("client_secret"))
        if request.headers.get("authorization", "").startswith("Basic "):
            client = tuple(base64.b64decode(request.headers["authorization"][6:]).decode().split(":", 1))
        if client != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant.redirect_uri != form.get("redirect_uri") or grant.challenge != challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant.person
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 7200,
                             "issued_at": int(time.time())})

    async def userinfo(self, request: Request) -> Response:
        await anyio.sleep(self.behaviour.userinfo_delay)
        header = request.headers.get("authorization", "")
        person = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if person is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if self.behaviour.userinfo_status != 200 or self.behaviour.userinfo_body is not None:
            return Response(self.behaviour.userinfo_body or b"", status_code=self.behaviour.userinfo_status,
                            media_type="application/json")
        return JSONResponse(person.userinfo())
