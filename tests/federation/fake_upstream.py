"""A small OpenID Connect provider for the failure cases a real Yihao never produces: ID tokens with a
wrong audience, nonce, issuer, algorithm or lifetime, slow or failing token endpoints."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from jwcrypto import jwk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from idp import jose
from idp.keys import generate_key


@dataclass
class Behaviour:
    """What the next answers look like; tests change it."""

    claims: dict[str, Any] = field(default_factory=dict)  # overrides of the ID token's claims
    header_alg: str | None = None  # sign "none" / a wrong alg
    token_delay: float = 0.0
    token_status: int = 200
    authorize_error: str | None = None
    nonces: dict[str, str] = field(default_factory=dict)  # code -> nonce


class FakeUpstream:
    def __init__(self, issuer: str, client_id: str) -> None:
        self.issuer, self.client_id = issuer, client_id
        self.key: jwk.JWK = generate_key("ES256")
        self.behaviour = Behaviour()
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/jwks", self.jwks),
            Route("/healthz", lambda request: Response("ok")),
        ])

    def sign(self, **claims: Any) -> str:
        """A JWT from this upstream: a subject token or assertion, defaults overridden by `claims`."""
        now = int(time.time())
        base = {"iss": self.issuer, "sub": "fake-subject-1", "iat": now, "exp": now + 300, "jti": f"j{time.time_ns()}"}
        return jose.sign({k: v for k, v in {**base, **claims}.items() if v is not None}, self.key)

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                             "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks"})

    async def jwks(self, request: Request) -> Response:
        public = self.key.export_public(as_dict=True)
        public.pop("alg", None)  # many providers leave it out
        return JSONResponse({"keys": [public]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if self.behaviour.authorize_error:
            return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"error": self.behaviour.authorize_error,
                                                                         "state": q["state"]}))
        code = f"code-{time.monotonic_ns()}"
        self.behaviour.nonces[code] = q["nonce"]
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}))

    async def token(self, request: Request) -> Response:
        import anyio

        form = await request.form()
        await anyio.sleep(self.behaviour.token_delay)
        if self.behaviour.token_status != 200:
            return JSONResponse({"error": "server_error"}, status_code=self.behaviour.token_status)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "sub": "fake-subject-1", "iat": now, "exp": now + 300,
                  "nonce": self.behaviour.nonces.get(str(form.get("code")), ""), **self.behaviour.claims}
        claims = {k: v for k, v in claims.items() if v is not None}
        token = jose.sign(claims, self.key)
        if self.behaviour.header_alg is not None:
            head, payload, _sig = token.split(".")
            import base64, json
            header = {"alg": self.behaviour.header_alg, "kid": self.key.get("kid"), "typ": "JWT"}
            head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
            token = f"{head}.{payload}."
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": token})
