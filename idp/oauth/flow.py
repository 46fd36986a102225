"""The authorization flow, synchronous: validate the request, decide what the person must do, resume.

`/authorize` and the interaction pages are thin async handlers around these functions; the login
UI is decoupled from `/authorize` by an interaction id, and the flow resumes with `finish`.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any, Mapping

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error

from idp import events
from idp.accounts import may_sign_in
from idp.authn.acr import scheme
from idp.authn.stepup import Requirement
from idp.claims import (ID_NUMBER_ITEM, UNMET_ACR, ClaimsError, Unmet, acr_request, consent_scope, for_request,
                        requested_sub)
from idp.clients import RegisteredClient
from idp.core import Core
from idp.crypto import equal, random_token
from idp.device import DeviceRequest
from idp.oauth.outcome import AuthorizationError, AuthorizeInput, Outcome, error_page
from idp.oauth.request_objects import RequestObjects, RequestRejected
from idp.oauth.requests import OAuthRequest
from idp.oauth.second_factor import SecondFactorSteps
from idp.sessions import SsoSession
from idp.store.ephemeral import get_json, put_json, take_json
from idp.tokens import Authentication, audience
from realname.enterprises import wants_enterprise

PROMPTS = {"none", "login", "consent", "select_account"}
RESPONSE_MODES = {"query", "form_post"}
UNSUPPORTED = {"registration": "registration_not_supported"}
MAX_AGE = re.compile(r"[0-9]{1,9}")
JKT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url SHA-256 thumbprint (RFC 7638)
SINGLE = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt", "max_age",
          "code_challenge", "code_challenge_method", "response_mode", "id_token_hint", "login_hint", "ui_locales",
          "claims", "acr_values", "dpop_jkt")


class Flow(SecondFactorSteps):
    def __init__(self, core: Core) -> None:
        self.core = core
        self.iss = core.settings.issuer
        self.acr = scheme(core.settings.acr_values)
        self.requests = RequestObjects(core)

    # -- /authorize --------------------------------------------------------------------------
    def authorize(self, req: AuthorizeInput) -> Outcome:
        try:  # JAR / PAR: from here on, the parameters are those of the request object or pushed request
            req = replace(req, items=self.requests.resolve(req.items))
        except RequestRejected as exc:
            return self._rejected(dict(req.items), exc)
        params = dict(req.items)
        try:
            grant, client = self._validate(req)
        except AuthorizationError as exc:
            if exc.redirect_uri is None:
                return error_page(exc.error, exc.description)
            return self.respond(exc.redirect_uri, params, [("error", exc.error), ("error_description", exc.description)])
        redirect_uri = params["redirect_uri"]
        try:
            return self._decide(req, params, client, redirect_uri)
        except AuthorizationError as exc:
            return self.respond(redirect_uri, params, [("error", exc.error), ("error_description", exc.description)])

    def _rejected(self, query: dict[str, str], exc: RequestRejected) -> Outcome:
        """A request object or request_uri refused: to the query's redirect URI if the client registered
        it (the object's own cannot be trusted), else on a page."""
        client = self.core.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri")
        if client is None or not redirect_uri or not client.check_redirect_uri(redirect_uri):
            return error_page(exc.error, exc.description)
        return self.respond(redirect_uri, query, [("error", exc.error), ("error_description", exc.description)])

    def push(self, client: RegisteredClient, items: list[tuple[str, str]]) -> tuple[str, int]:
        """RFC 9126 §2.1: validate a pushed request as /authorize would, then keep it for one use."""
        if any(k == "request_uri" for k, _ in items):
            raise AuthorizationError("invalid_request", "request_uri must not be sent to the pushed authorization "
                                                        "request endpoint")
        request = dict(items).get("request")
        if request is not None:
            try:
                items = self.requests.verify(request, client)
            except RequestRejected as exc:
                raise AuthorizationError(exc.error, exc.description) from None
        if dict(items).get("client_id", client.client_id) != client.client_id:
            raise AuthorizationError("invalid_request", "client_id is not the authenticated client")
        items = [("client_id", client.client_id), *((k, v) for k, v in items if k != "client_id")]
        req = AuthorizeInput("POST", self.iss + "/authorize", {}, items, None, "")
        self._validate(req)
        self._checked(dict(items), client)
        return self.requests.push(client, items)

    def _validate(self, req: AuthorizeInput) -> tuple[Any, RegisteredClient]:
        params = dict(req.items)
        counts: dict[str, int] = {}
        for key, _ in req.items:
            counts[key] = counts.get(key, 0) + 1
        repeated = [k for k in SINGLE if counts.get(k, 0) > 1]
        if repeated:  # RFC 6749 §3.1: no parameter more than once — and we cannot trust the redirect
            raise AuthorizationError("invalid_request", f"parameter {repeated[0]} is repeated")
        if not params.get("client_id"):
            raise AuthorizationError("invalid_request", "client_id is required")
        client = self.core.clients.get(params["client_id"])
        if client is None:
            raise AuthorizationError("invalid_client", "client_id is not registered")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:  # OIDC Core §3.1.2.1: required
            raise AuthorizationError("invalid_request", "redirect_uri is required")
        if not client.check_redirect_uri(redirect_uri):
            raise AuthorizationError("invalid_request", "redirect_uri does not exactly match a registered redirect URI")
        # RFC 6749 §4.1.2.1: once the redirect URI is trusted, errors go to it — by their spec name
        if not params.get("response_type"):
            raise AuthorizationError("invalid_request", "response_type is required", redirect_uri)
        if params["response_type"] != "code":
            raise AuthorizationError("unsupported_response_type", "response_type must be code", redirect_uri)
        mode = params.get("response_mode")
        if mode is not None and mode not in RESPONSE_MODES:
            params.pop("response_mode")
            raise AuthorizationError("invalid_request", "response_mode must be query or form_post", redirect_uri)
        oauth = OAuthRequest(req.method, req.url, req.headers, req.items if req.method == "GET" else (),
                             req.items if req.method == "POST" else ())
        try:
            grant = self.core.server.get_consent_grant(oauth)
        except OAuth2Error as error:
            description = error.description or error.error
            raise AuthorizationError(error.error, description, redirect_uri) from None
        return grant, client

    def _checked(self, params: dict[str, str],
                 client: RegisteredClient) -> tuple[set[str], str | None, str | None, Any]:
        """The checks that need no session: prompt, max_age, lengths, id_token_hint, claims / acr_values."""
        for name, error in UNSUPPORTED.items():
            if name in params:
                raise AuthorizationError(error, f"the {name} parameter is not supported")
        prompts = set(params.get("prompt", "").split())
        if prompts - PROMPTS:
            raise AuthorizationError("invalid_request", f"prompt value {sorted(prompts - PROMPTS)[0]} is not supported")
        if "none" in prompts and len(prompts) > 1:
            raise AuthorizationError("invalid_request", "prompt=none cannot be combined with other values")
        max_age = params.get("max_age")
        if max_age is not None and not MAX_AGE.fullmatch(max_age):  # str.isdigit() would take "²"
            raise AuthorizationError("invalid_request", "max_age must be a non-negative integer")
        if "dpop_jkt" in params and not JKT.fullmatch(params["dpop_jkt"]):  # RFC 9449 §10
            raise AuthorizationError("invalid_request", "dpop_jkt must be a base64url SHA-256 JWK thumbprint")
        if len(params.get("nonce", "")) > 512 or len(params.get("state", "")) > 2048:
            raise AuthorizationError("invalid_request", "nonce or state is too long")
        hint_sub = self._id_token_hint(params.get("id_token_hint"), client)
        try:
            acr = acr_request(params, self.acr)  # parses (and so validates) the claims parameter too
        except ClaimsError as exc:
            raise AuthorizationError("invalid_request", str(exc)) from None
        return prompts, max_age, hint_sub or requested_sub(params), acr

    def _decide(self, req: AuthorizeInput, params: dict[str, str], client: RegisteredClient,
                redirect_uri: str) -> Outcome:
        prompts, max_age, hint_sub, acr = self._checked(params, client)
        session = self.core.sessions.load(req.session_handle)
        if acr.essential and not acr.met_by(self.acr.strongest) and (session is None or not acr.met_by(session.acr)):
            raise AuthorizationError(*UNMET_ACR)  # no login could meet it: do not make the person try
        # select_account (OIDC Core §3.1.2.1): the login page is where a person picks the account to use
        needs_login = (session is None or "login" in prompts or "select_account" in prompts
                       or (max_age is not None and time.time() - session.auth_time > int(max_age))
                       or (hint_sub is not None and hint_sub != self.core.issuer.subject(client, session.account_id)))
        profile = self.core.accounts.get(session.account_id) if session is not None and not needs_login else None
        if needs_login or not may_sign_in(profile):  # a disabled account's session signs in nowhere
            if "none" in prompts:
                raise AuthorizationError("login_required", "the end-user is not logged in" if session is None
                                         else "the end-user must authenticate again")
            return self._interaction(req.items, req.browser_id, client.client_id, "login", None)
        assert session is not None
        auth = _authentication(session)
        try:
            step_up = self._second_factor(Requirement.of(acr, client.minimum_acr), profile, self.acr.rank(session.acr))
        except AuthorizationError:
            # Out of this account's reach by a second factor; a login by another method (a USB-key
            # certificate, DESIGN: loa/4) may still reach it, so the person is asked to sign in again.
            # After a password, the same shortfall is unmet_authentication_requirements.
            if "none" in prompts:
                raise AuthorizationError("login_required", "the end-user must sign in again to reach the acr") from None
            return self._interaction(req.items, req.browser_id, client.client_id, "login", None)
        if step_up is not None:  # the same person, a second factor now (OIDC Core §3.1.2.1 acr_values)
            if "none" in prompts:
                raise AuthorizationError("interaction_required", "the end-user must use a second factor")
            pending = self._pending_mfa(auth.account_id, auth.amr, step_up, client, params, sid=auth.sid)
            return self._interaction(req.items, req.browser_id, client.client_id, "mfa", None, mfa=pending)
        if self._chooses_enterprise(client, auth, params):
            if "none" in prompts:
                raise AuthorizationError("interaction_required", "the end-user must choose an enterprise")
            return self._interaction(req.items, req.browser_id, client.client_id, "enterprise", auth)
        if self._needs_consent(client, auth.account_id, params, prompts):
            if "none" in prompts:
                raise AuthorizationError("consent_required", "the end-user has not consented to this client")
            return self._interaction(req.items, req.browser_id, client.client_id, "consent", auth)
        return self.finish(req.items, auth)

    def _id_token_hint(self, hint: str | None, client: RegisteredClient) -> str | None:
        if not hint:
            return None
        claims = self.core.issuer.read_id_token(hint)
        if claims is None:
            raise AuthorizationError("invalid_request", "id_token_hint is not an ID token this provider issued")
        if client.client_id not in audience(claims):
            raise AuthorizationError("invalid_request", "id_token_hint was not issued to this client")
        return str(claims.get("sub"))

    def _needs_consent(self, client: RegisteredClient, account_id: str, params: dict[str, str], prompts: set[str]) -> bool:
        if "consent" in prompts:
            return True
        scope = consent_scope(client, params)
        if client.first_party:  # trusted, except for the whole ID number: only the person gives that
            if ID_NUMBER_ITEM not in scope.split():
                return False
            scope = ID_NUMBER_ITEM
        return not self.core.consents.covers(account_id, client.client_id, scope)

    def _interaction(self, items: list[tuple[str, str]], browser_id: str, client_id: str, step: str,
                     auth: Authentication | None, device: DeviceRequest | None = None,
                     mfa: dict[str, Any] | None = None) -> Outcome:
        uid = random_token(16)
        record = {"p": items, "b": browser_id, "x": random_token(24), "c": client_id, "s": step,
                  "u": auth.to_json() if auth else None, **({"m": mfa} if mfa else {})}
        if device is not None:
            record["d"] = [device.device_key, device.client_id, device.scope, device.user_code]
        put_json(self.core.store, f"ia:{uid}", record, ttl=self.core.settings.interaction_ttl)
        return Outcome(redirect=f"/interaction/{uid}")

    # -- a device's request (RFC 8628 §3.3), through the same login and consent --------------
    def device(self, device: DeviceRequest, browser_id: str, session_handle: str | None,
               ui_locales: str | None) -> Outcome:
        """Start the interaction for a user code typed in this browser: login unless signed in, then
        always consent, showing the code (RFC 8628 §5.4: the person confirms which device they admit)."""
        items = [("client_id", device.client_id), ("scope", device.scope)]
        items += [("ui_locales", ui_locales)] if ui_locales else []
        session = self.core.sessions.load(session_handle)
        client = self.core.clients.get(device.client_id)
        profile = self.core.accounts.get(session.account_id) if session is not None else None
        if client is None or not may_sign_in(profile):  # a disabled account: as no session
            return self._interaction(items, browser_id, device.client_id, "login", None, device)
        auth = _authentication(session)
        step = "enterprise" if self._chooses_enterprise(client, auth, dict(items)) else "consent"
        return self._interaction(items, browser_id, device.client_id, step, auth, device)

    def _finish_device(self, record: dict[str, Any], auth: Authentication, approved: bool) -> Outcome:
        """Give the polling device the person's answer."""
        device = DeviceRequest(*record["d"])
        client = self.core.clients.get(device.client_id)
        if client is None:
            return error_page("invalid_client", "client_id is not registered")
        if approved and not self.core.accounts.active(auth.account_id):  # disabled since the login
            self.core.devices.answer(device, None)  # the device is told no
            events.record(events.DEVICE_DENIED, outcome="failure", subject=auth.account_id,
                          client_id=client.client_id, reason="account_inactive")
            return error_page("access_denied", "the end-user's account is not active", 403)
        if approved:
            try:
                auth = for_request(dict(record["p"]), client, auth, self.core.issuer.subject(client, auth.account_id))
            except Unmet as unmet:
                return error_page(unmet.error, unmet.description)
        if not self.core.devices.answer(device, auth if approved else None):
            return error_page("expired_token", "this code has expired or was already used; start again on the device")
        if approved:
            self.core.sessions.join(auth.sid, client.client_id, auth.grant_id)  # told, and revoked, at logout
        events.record(events.DEVICE_AUTHORIZED if approved else events.DEVICE_DENIED,
                      outcome="success" if approved else "failure", subject=auth.account_id, client_id=client.client_id)
        return Outcome(page="device_done.html", context={"approved": approved, "client_name": client.name})

    # -- resuming ----------------------------------------------------------------------------
    def load_interaction(self, uid: str, browser_id: str | None) -> dict[str, Any] | None:
        """The interaction if it exists and belongs to this browser."""
        if not uid or len(uid) > 64:
            return None
        record = get_json(self.core.store, f"ia:{uid}")
        if not isinstance(record, dict) or not browser_id or not equal(record["b"], browser_id):
            return None
        return record

    def check_csrf(self, record: dict[str, Any], token: str | None) -> bool:
        return bool(token) and equal(record["x"], token or "")

    def after_login(self, uid: str, record: dict[str, Any], auth: Authentication) -> Outcome:
        """Continue after a successful login: consent if needed, else issue the code (or, for the
        account pages, go back to them)."""
        if record.get("r"):
            take_json(self.core.store, f"ia:{uid}")
            return Outcome(redirect=record["r"])
        params = dict(record["p"])
        client = self.core.clients.get(record["c"])
        if client is None:
            return error_page("invalid_client", "client_id is not registered")
        if self._chooses_enterprise(client, auth, params):
            record.update(s="enterprise", u=auth.to_json())
            put_json(self.core.store, f"ia:{uid}", record, ttl=self.core.settings.interaction_ttl)
            return Outcome(redirect=f"/interaction/{uid}")
        return self._after_choice(uid, record, client, auth)

    def _chooses_enterprise(self, client: RegisteredClient, auth: Authentication, params: dict[str, str]) -> bool:
        """A client asking for scope `enterprise` learns which one the person acts for: they choose."""
        return (not auth.acting_for and wants_enterprise(params.get("scope", ""), client)
                and bool(self.core.enterprises.mandates(auth.account_id)))

    def choose_enterprise(self, uid: str, record: dict[str, Any], enterprise_id: str | None) -> Outcome:
        """The person chose an enterprise they may act for (or none: themselves); then consent or the code."""
        client = self.core.clients.get(record["c"])
        if client is None or not record.get("u"):
            return error_page("invalid_client", "client_id is not registered")
        auth = Authentication.from_json(record["u"])
        if enterprise_id:
            if self.core.enterprises.mandate(auth.account_id, enterprise_id) is None:
                return error_page("access_denied", "the end-user may not act for this enterprise", 403)
            auth = replace(auth, acting_for=enterprise_id)
        return self._after_choice(uid, record, client, auth)

    def _after_choice(self, uid: str, record: dict[str, Any], client: RegisteredClient,
                      auth: Authentication) -> Outcome:
        params = dict(record["p"])
        prompts = set(params.get("prompt", "").split()) - {"login"}
        if "d" in record or self._needs_consent(client, auth.account_id, params, prompts):
            record.update(s="consent", u=auth.to_json())
            put_json(self.core.store, f"ia:{uid}", record, ttl=self.core.settings.interaction_ttl)
            return Outcome(redirect=f"/interaction/{uid}")
        if take_json(self.core.store, f"ia:{uid}") is None:
            return error_page("interaction_expired", "this sign-in has already been completed or has expired")
        return self.finish(record["p"], auth)

    def consent(self, uid: str, record: dict[str, Any], approved: bool) -> Outcome:
        if take_json(self.core.store, f"ia:{uid}") is None or not record.get("u"):
            return error_page("interaction_expired", "this sign-in has already been completed or has expired")
        params = dict(record["p"])
        auth = Authentication.from_json(record["u"])
        client = self.core.clients.get(record["c"])
        if client is None:
            return error_page("invalid_client", "client_id is not registered")
        if not approved:
            events.record(events.CONSENT_DENIED, outcome="failure", subject=auth.account_id, client_id=client.client_id)
        # an account disabled while the page was open: nothing is remembered (its code or device is refused)
        remembered = approved and self.core.accounts.active(auth.account_id)
        if "d" in record:  # a device's request: the answer goes to the polling device
            if remembered:
                self.core.consents.grant(auth.account_id, client.client_id, consent_scope(client, params))
            return self._finish_device(record, auth, approved)
        if not approved:
            return self.respond(params["redirect_uri"], params, [("error", "access_denied"),
                                                                 ("error_description", "the end-user denied the request")])
        if remembered:
            self.core.consents.grant(auth.account_id, client.client_id, consent_scope(client, params))
        return self.finish(record["p"], auth)

    def finish(self, items: list[tuple[str, str]] | list[list[str]], auth: Authentication) -> Outcome:
        """Issue the code for the (re-validated) request and send it to the client."""
        pairs = [(str(k), str(v)) for k, v in items]
        params = dict(pairs)
        req = AuthorizeInput("GET", self.iss + "/authorize", {}, pairs, None, "")
        try:
            grant, client = self._validate(req)
            if not self.core.accounts.active(auth.account_id):
                # disabled between the login and now (a consent page, an enterprise choice left open)
                raise AuthorizationError("access_denied", "the end-user's account is not active", params["redirect_uri"])
            hinted = self._id_token_hint(params.get("id_token_hint"), client)
            if hinted is not None and hinted != self.core.issuer.subject(client, auth.account_id):
                # OIDC Core §3.1.2.1: the hint names who the client expects; someone else signed in
                raise AuthorizationError("login_required", "the end-user signed in is not the one id_token_hint names",
                                         params["redirect_uri"])
            try:  # the acr and claims this grant reports
                granted = for_request(params, client, auth, self.core.issuer.subject(client, auth.account_id),
                                      self.acr)
            except Unmet as unmet:
                raise AuthorizationError(unmet.error, unmet.description, params["redirect_uri"]) from None
            _status, body, _headers = grant.create_authorization_response(params["redirect_uri"], granted)
        except AuthorizationError as exc:
            if exc.redirect_uri is None:
                return error_page(exc.error, exc.description)
            return self.respond(exc.redirect_uri, params, [("error", exc.error), ("error_description", exc.description)])
        self.core.sessions.join(auth.sid, params["client_id"], auth.grant_id)  # told, and revoked, at logout
        return self.respond(params["redirect_uri"], params, [("code", body["code"])])

    def respond(self, redirect_uri: str, params: Mapping[str, str], values: list[tuple[str, str]]) -> Outcome:
        """An authorization response in the requested mode, with `state` and `iss` (RFC 9207)."""
        values = list(values)
        if params.get("state"):
            values.append(("state", params["state"]))
        values.append(("iss", self.iss))
        if params.get("response_mode") == "form_post":
            return Outcome(form_post=(redirect_uri, values))
        return Outcome(redirect=add_params_to_uri(redirect_uri, values))


def _authentication(session: SsoSession) -> Authentication:
    return Authentication(account_id=session.account_id, auth_time=session.auth_time, amr=session.amr,
                          acr=session.acr, sid=session.sid)

