"""UserInfo (OIDC Core §5.3): GET or POST, bearer token in the header or the form body (RFC 6750)."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.accounts import Profile
from idp.endpoints.params import BadRequest, form_items

SCOPE_CLAIMS = {
    "profile": ("name", "given_name", "family_name", "preferred_username", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
}


def claims_for(profile: Profile, scopes: set[str]) -> dict[str, Any]:
    """Standard claims released by scope (OIDC Core §5.4); unset values are omitted."""
    values = {"preferred_username": profile.username, **{k: getattr(profile, k) for k in (
        "name", "given_name", "family_name", "locale", "updated_at", "email", "email_verified",
        "phone_number", "phone_number_verified")}}
    out: dict[str, Any] = {}
    for scope in scopes & SCOPE_CLAIMS.keys():
        for claim in SCOPE_CLAIMS[scope]:
            if values.get(claim) is not None:
                out[claim] = values[claim]
    if not profile.email:
        out.pop("email_verified", None)
    if not profile.phone_number:
        out.pop("phone_number_verified", None)
    return out


def _challenge(error: str, description: str, status: int = 401) -> Response:
    header = f'Bearer realm="yihao", error="{error}", error_description="{description}"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"WWW-Authenticate": header, "Cache-Control": "no-store"})


async def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    body_token = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body_token = dict(await form_items(request)).get("access_token")
    if header and body_token:  # RFC 6750 §2: one method per request
        raise BadRequest("the access token must be sent one way only")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()
    return body_token


async def userinfo(request: Request) -> Response:
    try:
        token = await _bearer(request)
    except BadRequest as exc:
        return _challenge("invalid_request", exc.description, 400)
    if not token:
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="yihao"', "Cache-Control": "no-store"})
    core = request.app.state.core

    def lookup() -> dict[str, Any] | None:
        found = core.issuer.read_access_token(token)
        if found is None or "openid" not in str(found[0].get("scope", "")).split():
            return None
        claims, account_id = found
        profile = core.accounts.get(account_id)
        if profile is None or profile.status != "active":
            return None
        return {"sub": claims["sub"], **claims_for(profile, set(str(claims["scope"]).split()))}

    result = await run_in_threadpool(lookup)
    if result is None:
        return _challenge("invalid_token", "the access token is invalid, expired or revoked")
    return JSONResponse(result, headers={"Cache-Control": "no-store"})
