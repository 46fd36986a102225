"""The login and consent steps of an interaction: pages for people, CSRF-protected forms."""
from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.accounts import Profile
from idp.authn import acr
from idp.authn.stepup import MFA, factor_amr
from idp.claims import consent_scope
from idp.core import Core
from idp.endpoints import sync
from idp.interaction.pages import duration, render, translate
from idp.interaction.web import browser_cookie, origin, outcome_response, page_locale, read_form
from idp.logout import propagate_logout
from idp.metrics import LOGINS
from idp.oauth.flow import error_page
from idp.sessions import SsoSession
from idp.throttle import Key, Verdict
from idp.tokens import Authentication

EXPIRED = error_page("interaction_expired", "this sign-in has already been completed or has expired")
PASSWORD_AMR = ("pwd",)
T = TypeVar("T")



def interaction_record(request: Request) -> tuple[str, dict[str, Any] | None]:
    uid = request.path_params["uid"]
    return uid, request.app.state.flow.load_interaction(uid, request.cookies.get(browser_cookie(request)))


def interaction_locale(request: Request, record: dict[str, Any]) -> str:
    return page_locale(request, dict(record["p"]).get("ui_locales"))


def _page(request: Request, uid: str, record: dict[str, Any], message: str | None = None, username: str = "",
          status: int = 200, message_values: dict[str, str] | None = None) -> Response:
    core = request.app.state.core
    client = core.clients.get(record["c"]) if record["c"] else None
    params = dict(record["p"])
    name = client.name if client else (record["c"] or translate(interaction_locale(request, record), "account.name"))
    context = {"uid": uid, "csrf_token": record["x"], "client_name": name,
               "message": message, "message_values": message_values,
               "username": username or params.get("login_hint", "")[:128],
               "user_code": record["d"][3] if "d" in record else None,  # a device's code, to compare
               "upstreams": [(u.slug, u.name) for u in request.app.state.core.federation.upstreams.enabled()]}
    if record["s"] == "mfa":
        return _mfa_page(request, uid, record, context, status)
    if record["s"] == "enterprise":
        from idp.interaction.enterprise import page

        return page(request, uid, record, message, status)
    if record["s"] == "consent":
        scope = consent_scope(client, params) if client else ""
        context["scopes"] = [s for s in scope.split() if s != "openid"] or ["openid"]
        # OIDC Registration §2: the client's own logo and links, shown to the person deciding
        context.update({k: getattr(client, k, None) for k in ("logo_uri", "policy_uri", "tos_uri", "client_uri")})
        logo = (origin(client.logo_uri),) if client and client.logo_uri else ()
        return render(request, "consent.html", context, locale=interaction_locale(request, record), status=status, img_src=logo)
    return render(request, "login.html", context, locale=interaction_locale(request, record), status=status)


def showing(page: Callable[[Request, str, dict[str, Any]], Response]) -> Callable[[Request], Awaitable[Response]]:
    """The GET of an interaction page: `page(request, uid, record)` for the browser that owns the
    interaction (inline when the core's I/O is local, else in the thread pool); the expired page otherwise."""

    def show(request: Request) -> Response:
        uid, record = interaction_record(request)
        if record is None:
            return outcome_response(request, EXPIRED, page_locale(request))
        return page(request, uid, record)

    async def endpoint(request: Request) -> Response:
        return await sync.run(request.app.state.core.local_io, show, request)

    return endpoint


show = showing(lambda request, uid, record: _page(request, uid, record))


StepHandler = Callable[[Request, str, dict[str, Any], dict[str, str]], Response]


def form_step(at: str) -> Callable[[StepHandler], Callable[[Request], Awaitable[Response]]]:
    """A POST of interaction step `at`: one read of the body, one hop into the thread pool, where the
    browser, CSRF token and step are checked before `handle(request, uid, record, form)` runs."""

    def wrap(handle: StepHandler) -> Callable[[Request], Awaitable[Response]]:
        def checked(request: Request, form: dict[str, str] | None) -> Response:
            found = step(request, form, at)
            if isinstance(found, Response):
                return found
            assert form is not None
            return handle(request, *found, form)

        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(checked, request, await read_form(request))

        return endpoint

    return wrap


def step(request: Request, form: dict[str, str] | None, at: str) -> tuple[str, dict[str, Any]] | Response:
    """The interaction, if this browser owns it, the CSRF token matches and it is at step `at`; else a page."""
    uid, record = interaction_record(request)
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    if form is None or not request.app.state.flow.check_csrf(record, form.get("csrf_token")):
        return _page(request, uid, record, "login.csrf", status=403)
    if record["s"] != at:
        return _page(request, uid, record)
    return uid, record


@form_step("login")  # argon2 included, in the thread pool
def login(request: Request, uid: str, record: dict[str, Any], form: dict[str, str]) -> Response:
    core = request.app.state.core
    username, password = form.get("username", "").strip(), form.get("password", "")
    # Keyed by what was typed: an unknown username is throttled and answered like a known one.
    profile = _guarded(request, uid, record, core.throttle.keys("login", account=username[:128]),
                       lambda: core.accounts.authenticate(username, password), reason="credentials",
                       username=username[:128])
    if isinstance(profile, Response):
        return profile
    if profile is None:
        return _page(request, uid, record, "login.failed", username=username[:128])
    second = request.app.state.flow.after_password(uid, record, profile, PASSWORD_AMR)
    if second is not None:  # a second factor first, or an error for the client
        return outcome_response(request, second, interaction_locale(request, record))
    return signed_in(request, uid, record, profile, PASSWORD_AMR, acr.PASSWORD_STRENGTH)


def signed_in(request: Request, uid: str, record: dict[str, Any], profile: Profile, amr: tuple[str, ...],
              strength: int, on_session: Callable[[SsoSession], None] | None = None) -> Response:
    """The person is authenticated: a session under a new handle (no fixation, at login and at
    step-up alike), then the flow goes on (consent or the code). acr = min(identity level, strength);
    `on_session` sees the new session first."""
    core = request.app.state.core
    achieved = acr.scheme(core.settings.acr_values).achieved(profile.assurance_level, strength)
    # A login never keeps the old handle; another person's login ends the old session everywhere.
    handle, session, ended = core.sessions.replace(request.cookies.get(core.sessions.cookie), profile.id,
                                                   amr, achieved)
    if ended is not None:
        propagate_logout(core, ended.account_id, ended.sid)
    if on_session is not None:
        on_session(session)
    LOGINS.labels(outcome="success").inc()
    events.record(events.LOGIN_SUCCEEDED, subject=profile.id, client_id=record["c"], amr=list(amr), acr=achieved)
    auth = Authentication(account_id=profile.id, auth_time=session.auth_time, amr=session.amr, acr=session.acr,
                          sid=session.sid)
    outcome = request.app.state.flow.after_login(uid, record, auth)
    outcome.set_session = handle
    return outcome_response(request, outcome, interaction_locale(request, record))


def _guarded(request: Request, uid: str, record: dict[str, Any], keys: tuple[Key, ...], check: Callable[[], T | None],
             *, reason: str, username: str = "", subject: str | None = None) -> T | Response | None:
    """`check()` unless a lock holds; a falsy result is a counted, audited failure. Returns the
    result, None after a failure, or the locked page (also when this failure started the lock)."""
    core = request.app.state.core
    verdict = core.throttle.check(keys)
    if verdict.allowed:
        result = check()
        if result:
            core.throttle.success(keys)
            return result
        LOGINS.labels(outcome="failure").inc()
        events.record(events.LOGIN_FAILED, outcome="failure", subject=subject, client_id=record["c"], reason=reason)
        verdict = core.throttle.failure(keys)
        if verdict.allowed:
            return None
    else:
        events.record(events.LOGIN_FAILED, outcome="failure", subject=subject, client_id=record["c"], reason="locked")
    return _locked(request, uid, record, verdict, username)


def _locked(request: Request, uid: str, record: dict[str, Any], verdict: Verdict, username: str = "") -> Response:
    """429 with Retry-After: when to try again, the same for every username, known or not."""
    return locked(request, record, verdict.retry_after, lambda message, status, values: _page(
        request, uid, record, message, username=username, status=status, message_values=values))


def locked(request: Request, record: dict[str, Any], retry_after: int,
           page: Callable[[str, int, dict[str, str]], Response]) -> Response:
    """The sign-in page of any method, saying how long the lock lasts (429 with Retry-After)."""
    LOGINS.labels(outcome="locked").inc()
    response = page("login.locked", 429, {"wait": duration(interaction_locale(request, record), retry_after)})
    response.headers["Retry-After"] = str(retry_after)
    return response


# -- the second factor --------------------------------------------------------------------------

def _mfa_page(request: Request, uid: str, record: dict[str, Any], context: dict[str, Any], status: int) -> Response:
    factors = request.app.state.core.factors
    pending = record["m"]
    account_id = pending["a"]
    context.update(totp=factors.totp.enrolled(account_id), passkey=None, need_passkey=pending["n"] > MFA)
    if factors.passkeys.list(account_id):
        ceremony = factors.passkeys.authentication(account_id, user_verification=pending["n"] > MFA)
        context["passkey"] = {"ceremony": ceremony.id, "options": ceremony.options}
    return render(request, "second_factor.html", context, locale=interaction_locale(request, record), status=status)


@form_step("mfa")
def second_factor(request: Request, uid: str, record: dict[str, Any], form: dict[str, str]) -> Response:
    core = request.app.state.core
    pending = record["m"]
    account_id = pending["a"]
    if "s" in pending and not session_still_here(request, pending["s"]):  # a step-up of a session since ended
        return outcome_response(request, EXPIRED, interaction_locale(request, record))
    verified = _guarded(request, uid, record, core.throttle.keys("mfa", account=account_id),
                        lambda: _verify_factor(core, account_id, form), reason="second_factor", subject=account_id)
    if isinstance(verified, Response):
        return verified
    profile = core.accounts.get(account_id)
    if verified is None or profile is None:
        return _page(request, uid, record, "mfa.failed", status=400)
    strength, amr = verified
    if acr.level(profile.assurance_level, strength) < pending["f"]:  # e.g. a passkey that did not verify the
        return _page(request, uid, record, "mfa.too_weak", status=400)  # person, where loa/4 is required
    return signed_in(request, uid, record, profile, factor_amr(tuple(pending["m"]), amr), strength)


def _verify_factor(core: Core, account_id: str, form: dict[str, str]) -> tuple[int, tuple[str, ...]] | None:
    """The strength and amr of the factor the form presents, if it checks out."""
    method = form.get("method")
    if method == "otp" and core.factors.totp.verify(account_id, form.get("code", "")[:32]):
        return MFA, ("otp",)
    if method == "recovery_code" and core.factors.totp.use_recovery_code(account_id, form.get("code", "")[:64]):
        return MFA, ("otp",)
    if method == "webauthn":
        use = core.factors.passkeys.authenticate(account_id, form.get("ceremony", ""), form.get("credential", ""))
        if use is not None:
            return core.factors.passkey_strength(use), use.amr
    return None


def session_still_here(request: Request, sid: str | None) -> bool:
    """Whether the SSO session `sid` that a pending step continues is still this browser's and alive.

    A step after the login (consent, the choice of an enterprise, a step-up) acts for the person
    signed in when it began. Once that session ended (a logout, possibly in another tab of a shared
    computer) or the browser signed in as someone else, the step is over: the next person at the
    computer must not get a code for the previous one by pressing a button left on the screen."""
    core = request.app.state.core
    session = core.sessions.load(request.cookies.get(core.sessions.cookie))
    return session is not None and bool(sid) and session.sid == sid


@form_step("consent")
def consent(request: Request, uid: str, record: dict[str, Any], form: dict[str, str]) -> Response:
    if not session_still_here(request, (record.get("u") or {}).get("s")):
        return outcome_response(request, EXPIRED, interaction_locale(request, record))
    if form.get("action") not in ("approve", "deny"):
        return _page(request, uid, record)
    outcome = request.app.state.flow.consent(uid, record, form["action"] == "approve")
    return outcome_response(request, outcome, interaction_locale(request, record))
