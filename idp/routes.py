"""The route table: one line per endpoint."""
from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from idp.endpoints.authorize import authorize
from idp.endpoints import discovery as discovery_document, jwks as jwks_document
from idp.endpoints.discovery import discovery
from idp.endpoints.health import healthz, readyz
from idp.endpoints.jwks import jwks
from idp.endpoints.par import par
from idp.endpoints.registration import configuration, register
from idp.endpoints.token import device_authorization, introspect, revoke, token
from idp.endpoints.userinfo import userinfo
from idp.endpoints import federation_logout
from idp.interaction import account, certificate, device, enterprise, links, login, logout, security, signup, upstream
from idp.metrics import metrics_endpoint
from idp.settings import Settings

STATIC = __file__.rsplit("/", 1)[0] + "/static"


DIRECT = ("token", "userinfo", "introspect", "revoke")  # machine endpoints the edge calls itself


def direct_routes(table: list[BaseRoute]) -> dict[tuple[str, str], Route]:
    """(path, method) -> route, for the `DIRECT` endpoints (see `idp.middleware.edge`); HEAD stays routed."""
    return {(route.path, method): route for route in table
            if isinstance(route, Route) and route.name in DIRECT for method in route.methods or () if method != "HEAD"}


def routes(settings: Settings) -> list[BaseRoute]:
    table: list[BaseRoute] = [
        Route(discovery_document.PATH, discovery, methods=["GET"], name="discovery"),
        Route(jwks_document.PATH, jwks, methods=["GET"], name="jwks"),
        Route("/authorize", authorize, methods=["GET", "POST"], name="authorize"),
        Route("/par", par, methods=["POST"], name="par"),
        Route("/token", token, methods=["POST"], name="token"),
        Route("/device_authorization", device_authorization, methods=["POST"], name="device_authorization"),
        Route("/device", device.show, methods=["GET"], name="device"),
        Route("/device", device.enter, methods=["POST"], name="device_enter"),
        Route("/introspect", introspect, methods=["POST"], name="introspect"),
        Route("/revoke", revoke, methods=["POST"], name="revoke"),
        Route("/userinfo", userinfo, methods=["GET", "POST"], name="userinfo"),
        Route("/register", register, methods=["POST"], name="registration"),
        Route("/register/{client_id}", configuration, methods=["GET", "PUT", "DELETE"], name="client_configuration"),
        Route("/interaction/{uid}", login.show, methods=["GET"], name="interaction"),
        Route("/interaction/{uid}/login", login.login, methods=["POST"], name="login"),
        Route("/interaction/{uid}/consent", login.consent, methods=["POST"], name="consent"),
        Route("/interaction/{uid}/signup", signup.show, methods=["GET"], name="signup_page"),
        Route("/interaction/{uid}/signup", signup.submit, methods=["POST"], name="signup"),
        Route("/interaction/{uid}/enterprise", enterprise.choose, methods=["POST"], name="enterprise_choice"),
        Route("/account/verify", account.show, methods=["GET"], name="account_verify_page"),
        Route("/account/verify", account.submit, methods=["POST"], name="account_verify"),
        Route("/interaction/{uid}/upstream/{slug}", upstream.start, methods=["GET"], name="upstream_login"),
        Route("/federation/callback", upstream.callback, methods=["GET"], name="upstream_callback"),
        Route("/federation/link/{token}", upstream.confirm, methods=["POST"], name="upstream_link"),
        Route("/federation/{slug}/backchannel-logout", federation_logout.backchannel_logout, methods=["POST"],
              name="upstream_backchannel_logout"),
        Route("/federation/logged-out", logout.upstream_logged_out, methods=["GET"], name="upstream_logged_out"),
        Route("/account/links", links.links, methods=["GET"], name="account_links"),
        Route("/account/links/{link_id}/remove", links.unlink, methods=["POST"], name="account_unlink"),
        Route("/interaction/{uid}/certificate", certificate.show, methods=["GET"], name="certificate"),
        Route("/interaction/{uid}/certificate", certificate.login, methods=["POST"], name="certificate_login"),
        Route("/interaction/{uid}/mfa", login.second_factor, methods=["POST"], name="second_factor"),
        Route("/account/security", security.show, methods=["GET"], name="account_security"),
        Route("/account/security", security.change, methods=["POST"], name="account_security_change"),
        Route("/logout", logout.end_session, methods=["GET", "POST"], name="end_session"),
        Route("/logout/{uid}", logout.confirm, methods=["POST"], name="logout_confirm"),
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", readyz, methods=["GET"], name="readyz"),
        Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if settings.demo:
        from idp.demo import demo_routes

        table += demo_routes()
    return table
