"""OpenID Provider metadata (OIDC Discovery 1.0 §3): advertises what works, nothing else."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp import verified_claims
from idp.authn import acr
from idp.claims import CLAIM_SCOPE
from idp.client_keys import ASYMMETRIC_ALGS, HMAC_ALGS, REQUEST_OBJECT_ALGS
from idp.clients import AUTH_METHODS, CONFIDENTIAL_METHODS, GRANT_TYPES, ID_TOKEN_ALGS, SUPPORTED_SCOPES
from idp.dpop import ALGS as DPOP_ALGS
from idp.settings import Settings
from realname.enterprises import ENTERPRISE_CLAIM


def metadata(settings: Settings) -> dict[str, Any]:
    iss = settings.issuer
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "introspection_endpoint": f"{iss}/introspect",
        "revocation_endpoint": f"{iss}/revoke",
        "jwks_uri": f"{iss}/jwks",
        "end_session_endpoint": f"{iss}/logout",
        "registration_endpoint": f"{iss}/register",
        "device_authorization_endpoint": f"{iss}/device_authorization",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": list(GRANT_TYPES),
        # pairwise for every client by default; public for those an administrator allows it
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGS),
        "token_endpoint_auth_methods_supported": [*AUTH_METHODS, *(["tls_client_auth"] if settings.mtls_proxies else [])],
        # RFC 8705 §3.3: only where a proxy forwards client certificates can tokens be bound to one
        "tls_client_certificate_bound_access_tokens": bool(settings.mtls_proxies),
        "token_endpoint_auth_signing_alg_values_supported": [*ASYMMETRIC_ALGS, *HMAC_ALGS],
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": [*ASYMMETRIC_ALGS, *HMAC_ALGS],
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": [*ASYMMETRIC_ALGS, *HMAC_ALGS],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp",
                             "at_hash", *CLAIM_SCOPE, verified_claims.CLAIM, "act", ENTERPRISE_CLAIM],
        "claims_parameter_supported": True,
        "acr_values_supported": acr.scheme(settings.acr_values).supported(),
        "userinfo_signing_alg_values_supported": list(ID_TOKEN_ALGS),
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": True,
        "request_object_signing_alg_values_supported": list(REQUEST_OBJECT_ALGS),
        "pushed_authorization_request_endpoint": f"{iss}/par",
        "require_pushed_authorization_requests": settings.require_par,
        "authorization_response_iss_parameter_supported": True,
        "resource_indicators_supported": True,
        "ui_locales_supported": ["zh-CN", "en"],
        "claims_locales_supported": ["zh-CN"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        **verified_claims.metadata(settings.trust_framework),
    }


PATH = "/.well-known/openid-configuration"
MEDIA_TYPE = "application/json"
CACHE_CONTROL = "public, max-age=300"


async def discovery(request: Request) -> Response:
    body: bytes = request.app.state.discovery_json
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})
