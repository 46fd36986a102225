"""UserInfo (OIDC Core §5.3): GET or POST, bearer token in the header or the form body (RFC 6750)."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp import jose
from idp.claims import release, scope_claims
from idp.core import Core
from idp.endpoints.params import BadRequest, form_items
from idp.tokens import audience


def _challenge(error: str, description: str, status: int = 401, scope: str | None = None) -> Response:
    header = f'Bearer realm="yihao", error="{error}", error_description="{description}"'
    if scope:
        header += f', scope="{scope}"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"WWW-Authenticate": header, "Cache-Control": "no-store"})


async def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    body_token = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        tokens = [value for key, value in await form_items(request) if key == "access_token"]
        if len(tokens) > 1:  # RFC 6750 §3.1: a repeated parameter is invalid_request
            raise BadRequest("parameter access_token is repeated")
        body_token = tokens[0] if tokens else None
    if header and body_token:  # RFC 6750 §2: one method per request
        raise BadRequest("the access token must be sent one way only")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()
    return body_token


def _response(core: Core, client_id: str, body: dict[str, Any]) -> Response:
    """JSON, or a JWS when the client registered userinfo_signed_response_alg (OIDC Core §5.3.2)."""
    client = core.clients.get(client_id)
    alg = client.userinfo_signed_response_alg if client else None
    if not alg:
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
    signed = jose.sign({**body, "iss": core.settings.issuer, "aud": client_id}, core.keys.signing_key(alg))
    return Response(signed, media_type="application/jwt", headers={"Cache-Control": "no-store"})


async def userinfo(request: Request) -> Response:
    try:
        token = await _bearer(request)
    except BadRequest as exc:
        return _challenge("invalid_request", exc.description, 400)
    if not token:
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="yihao"', "Cache-Control": "no-store"})
    core = request.app.state.core

    def lookup() -> Response:
        found = core.issuer.read_access_token(token)
        if found is None:
            return _challenge("invalid_token", "the access token is invalid, expired or revoked")
        claims, account_id = found
        if account_id is None or core.settings.issuer not in audience(claims):  # a client's own token, or one for an API
            return _challenge("invalid_token", "the access token was not issued for userinfo")
        if core.clients.get(str(claims.get("client_id"))) is None:  # RFC 7592 §2.3: a deleted client's tokens end
            return _challenge("invalid_token", "the access token is invalid, expired or revoked")
        scopes = set(str(claims.get("scope", "")).split())
        if "openid" not in scopes:  # RFC 6750 §3.1: a valid token without the scope needed is 403
            return _challenge("insufficient_scope", "the access token was not issued for the openid scope", 403,
                              scope="openid")
        profile = core.accounts.get(account_id)
        if profile is None or profile.status != "active":
            return _challenge("invalid_token", "the access token is invalid, expired or revoked")
        requested = claims.get("uc") if isinstance(claims.get("uc"), list) else []
        # OIDC Core §5.4 by scope, plus §5.5 the claims the request asked for here
        acting = {"act": claims["act"]} if isinstance(claims.get("act"), dict) else {}  # for an enterprise
        body = {"sub": claims["sub"], **acting, **release(profile, [*scope_claims(scopes), *requested])}
        client = core.clients.get(str(claims.get("client_id")))
        if "uv" in claims and client is not None:  # OIDC4IDA: the verified_claims asked for at userinfo
            body.update(core.server.verified_claims(client, account_id, claims["uv"]))
        return _response(core, str(claims.get("client_id")), body)

    return await run_in_threadpool(lookup)
