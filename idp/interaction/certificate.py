"""The certificate step of a sign-in: a page that asks the local signing agent to sign a fresh
challenge with the USB key, and the POST that verifies what came back (idp.authn.certificate)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.authn import acr
from idp.interaction.login import form_step, interaction_locale, locked, showing, signed_in
from idp.interaction.pages import render
from idp.interaction.web import browser_cookie, origin
from idp.metrics import LOGINS
from idp.pki.errors import Refused
from idp.pki.mtls import client_certificate

# A refusal the person can fix by trying again (another key, another certificate) is 400, and counts
# towards the address's brute-force throttle; one that says the certificate is not acceptable is 403.
_BAD_INPUT = {"challenge_invalid", "malformed_certificate", "malformed_signature", "signature_invalid"}


def page(request: Request, uid: str, record: dict[str, Any], message: str | None = None, status: int = 200,
         message_values: dict[str, str] | None = None) -> Response:
    """The certificate page with a fresh challenge (every showing, so a refused attempt never reuses one)."""
    core = request.app.state.core
    client = core.clients.get(record["c"])
    challenge = core.certificates.challenge(interaction=uid, browser=request.cookies.get(browser_cookie(request), ""),
                                            origin=origin(core.settings.issuer))
    context = {"uid": uid, "csrf_token": record["x"], "client_name": client.name if client else record["c"],
               "challenge": challenge, "agent_url": core.settings.cert_agent_url, "message": message,
               "message_values": message_values, "tls_certificate": client_certificate(request) is not None}
    return render(request, "certificate.html", context, locale=interaction_locale(request, record), status=status,
                  connect_src=(origin(core.settings.cert_agent_url),))


show = showing(page)


@form_step("login")  # the certificate is another way through the login step
def login(request: Request, uid: str, record: dict[str, Any], form: dict[str, str]) -> Response:
    core = request.app.state.core
    keys = core.throttle.keys("certificate")  # this address: the account is known only after verification
    verdict = core.throttle.check(keys)
    if not verdict.allowed:
        return _locked(request, uid, record, verdict.retry_after)
    try:
        if form.get("method") == "tls":  # the certificate the proxy verified in the TLS handshake
            result = core.certificates.login_tls(certificate=client_certificate(request) or "", client_id=record["c"])
        else:
            result = core.certificates.login(
                interaction=uid, browser=request.cookies.get(browser_cookie(request), ""),
                challenge=form.get("challenge", ""), certificate=form.get("certificate", ""),
                signature=form.get("signature", ""), chain=form.get("chain", "").split(), client_id=record["c"],
                posted_origin=request.headers.get("origin"))
    except Refused as refused:
        LOGINS.labels(outcome="failure").inc()
        if refused.code in _BAD_INPUT and not core.throttle.failure(keys).allowed:
            return _locked(request, uid, record, core.throttle.check(keys).retry_after)
        return page(request, uid, record, f"cert.refused.{refused.code}",
                    status=400 if refused.code in _BAD_INPUT else 403)
    return signed_in(request, uid, record, result.profile, result.amr, acr.HARDWARE)


def _locked(request: Request, uid: str, record: dict[str, Any], retry_after: int) -> Response:
    return locked(request, record, retry_after, lambda message, status, values: page(
        request, uid, record, message, status=status, message_values=values))
