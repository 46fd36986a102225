"""UserInfo (OIDC Core §5.3): GET or POST, bearer token in the header or the form body (RFC 6750)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp import bridge, jose
from idp.accounts import changed_key, may_sign_in
from idp.claims import release, scope_claims
from idp.core import Core
from idp.crypto import equal
from idp.dpop import ALGS, DPoPError
from idp.endpoints import sync
from idp.endpoints.params import BadRequest, form_items
from idp.oauth.mtls import x5t_s256
from idp.pki.mtls import forwarded_certificate
from idp.tokens import audience


DPOP_CHALLENGE = f'DPoP algs="{" ".join(ALGS)}"'
NO_TOKEN = f'Bearer realm="yihao", {DPOP_CHALLENGE}'  # RFC 9449 §7.1: both schemes are accepted here


def _challenge(error: str, description: str, status: int = 401, scope: str | None = None,
               scheme: str = "bearer", nonce: str | None = None) -> Response:
    params = f'error="{error}", error_description="{description}"' + (f', scope="{scope}"' if scope else "")
    header = f"{DPOP_CHALLENGE}, {params}" if scheme == "dpop" else f'Bearer realm="yihao", {params}'
    headers = {"WWW-Authenticate": header, "Cache-Control": "no-store"} | ({"DPoP-Nonce": nonce} if nonce else {})
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


async def _credentials(request: Request) -> tuple[str, str | None]:
    """The scheme (`bearer` or `dpop`) and the access token, from the header or the form body (bearer only)."""
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
        if scheme.lower() not in ("bearer", "dpop") or not value.strip():
            return "bearer", None
        return scheme.lower(), value.strip()
    return "bearer", body_token


def _response(core: Core, client_id: str, body: dict[str, Any]) -> Response:
    """JSON, or a JWS when the client registered userinfo_signed_response_alg (OIDC Core §5.3.2)."""
    client = core.clients.get(client_id)
    alg = client.userinfo_signed_response_alg if client else None
    if not alg:
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
    signed = jose.sign({**body, "iss": core.settings.issuer, "aud": client_id}, core.keys.signing_key(alg))
    return Response(signed, media_type="application/jwt", headers={"Cache-Control": "no-store"})


def _presented(request: Request, thumbprint: str) -> bool:
    certificate = forwarded_certificate(request)
    return certificate is not None and equal(x5t_s256(certificate), thumbprint)


async def userinfo(request: Request) -> Response:
    try:
        scheme, token = await _credentials(request)
    except BadRequest as exc:
        return _challenge("invalid_request", exc.description, 400)
    if not token:
        return Response(status_code=401, headers={"WWW-Authenticate": NO_TOKEN, "Cache-Control": "no-store"})
    core = request.app.state.core

    def lookup() -> Response:
        proven = _proof(core, request, token) if scheme == "dpop" else None
        if isinstance(proven, Response):
            return proven
        found = core.issuer.read_with_mark(token, changed_key)  # the account's change mark in the same round trip
        if found is None:
            return _challenge("invalid_token", "the access token is invalid, expired or revoked", scheme=scheme)
        claims, account_id, changed = found
        refused = _binding_refused(proven, claims)
        if refused is not None:
            return refused
        bound = claims.get("cnf", {}).get("x5t#S256") if isinstance(claims.get("cnf"), dict) else None
        if bound is not None and not _presented(request, str(bound)):
            # RFC 8705 §3: a certificate-bound token is good only with the certificate it is bound to
            return _challenge("invalid_token",
                              "the access token is bound to a client certificate this request did not present")
        if account_id is None or core.settings.issuer not in audience(claims):  # a client's own token, or one for an API
            return _challenge("invalid_token", "the access token was not issued for userinfo", scheme=scheme)
        client = core.clients.get(str(claims.get("client_id")))
        if client is None:  # RFC 7592 §2.3: a deleted client's tokens end
            return _challenge("invalid_token", "the access token is invalid, expired or revoked", scheme=scheme)
        scopes = set(str(claims.get("scope", "")).split())
        if "openid" not in scopes:  # RFC 6750 §3.1: a valid token without the scope needed is 403
            return _challenge("insufficient_scope", "the access token was not issued for the openid scope", 403,
                              scope="openid", scheme=scheme)
        profile = core.accounts.current(account_id, changed)
        if not may_sign_in(profile):
            return _challenge("invalid_token", "the access token is invalid, expired or revoked", scheme=scheme)
        requested = claims.get("uc") if isinstance(claims.get("uc"), list) else []
        # OIDC Core §5.4 by scope, plus §5.5 the claims the request asked for here
        acting = {"act": claims["act"]} if isinstance(claims.get("act"), dict) else {}  # for an enterprise
        body = {"sub": claims["sub"], **acting, **release(profile, [*scope_claims(scopes), *requested])}
        if "uv" in claims:  # OIDC4IDA: the verified_claims asked for at userinfo
            body.update(bridge.offload(core.server.verified_claims, client, account_id, claims["uv"]))  # SQL
        return _response(core, str(claims.get("client_id")), body)

    # reads the store, and the database only through caches that offload their misses
    response = await sync.run(sync.place(core.local_io, local=True, store_only=True), lookup)
    if scheme == "dpop":  # RFC 9449 §8.2: a fresh nonce with every answer to a proof
        response.headers.setdefault("DPoP-Nonce", core.dpop.nonce())
    return response


def _proof(core: Core, request: Request, token: str) -> str | Response:
    """RFC 9449 §7.1: the DPoP scheme needs a valid proof for this request, with `ath` of this token."""
    try:
        proof = core.dpop.check(request.headers.getlist("dpop"), request.method,
                                core.settings.issuer + request.scope["path"], access_token=token)
    except DPoPError as refused:
        nonce = core.dpop.nonce() if refused.error == "use_dpop_nonce" else None
        return _challenge(refused.error, refused.description, scheme="dpop", nonce=nonce)
    if proof is None:
        return _challenge("invalid_dpop_proof", "the DPoP scheme needs a DPoP proof", scheme="dpop")
    return proof.jkt


def _binding_refused(proven: str | None, claims: dict[str, Any]) -> Response | None:
    """A DPoP-bound token works only with a proof of its key (`proven`); a bearer token only as one."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if proven is None and jkt is not None:  # RFC 9449 §7.2: a bound token presented as a bearer token
        return _challenge("invalid_token", "the access token is DPoP-bound; send it with the DPoP scheme and a proof",
                          scheme="dpop")
    if proven is not None and jkt is None:
        return _challenge("invalid_token", "the access token is not DPoP-bound; send it as a bearer token",
                          scheme="dpop")
    if proven is not None and not equal(str(jkt), proven):
        return _challenge("invalid_token", "the DPoP proof is not signed by the key the access token is bound to",
                          scheme="dpop")
    return None
