"""The second-factor steps of the flow: when a login or a live session needs one, and the
interaction records that carry it (who, the first factor's amr, the strength wanted, the acr floor)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from idp.accounts import Profile
from idp.authn.acr import AcrValues, level
from idp.authn.stepup import MFA, PASSWORD, Requirement, Unreachable
from idp.claims import UNMET_ACR, acr_request
from idp.clients import RegisteredClient
from idp.core import Core
from idp.crypto import random_token
from idp.oauth.outcome import AuthorizationError, Outcome, error_page
from idp.sessions import SsoSession
from idp.store.ephemeral import put_json, take_json


class SecondFactorSteps:
    """Mixed into Flow, whose `core` and `respond` these use."""

    core: Core
    acr: AcrValues
    respond: Callable[[str, Mapping[str, str], list[tuple[str, str]]], Outcome]

    def _second_factor(self, requirement: Requirement, profile: Profile, current: int) -> int | None:
        """The strength a second factor must bring, None if none is needed; the essential part
        of the request being out of this account's reach is unmet_authentication_requirements."""
        if current >= requirement.wanted:  # the common case: no database read
            return None
        try:
            return requirement.second_factor(profile.assurance_level, current,
                                             self.core.factors.available(profile.id))
        except Unreachable:
            raise AuthorizationError(*UNMET_ACR) from None

    def _pending_mfa(self, account_id: str, amr: tuple[str, ...], strength: int, client: RegisteredClient | None,
                     params: Mapping[str, str], sid: str | None = None) -> dict[str, Any]:
        """What the second-factor step needs: who, the first factor's amr, the strength wanted and the acr
        floor (none for the account pages, which need the factor, not a level)."""
        floor = Requirement.of(acr_request(params, self.acr), client.minimum_acr).floor if client is not None else 0
        # A step-up names the session it raises: the factor alone never signs anyone in once it has ended.
        return {"a": account_id, "m": list(amr), "n": strength, "f": floor, **({"s": sid} if sid else {})}

    def after_password(self, uid: str, record: dict[str, Any], profile: Profile,
                       amr: tuple[str, ...]) -> Outcome | None:
        """After the first factor: the second-factor step if the request needs one, an error if the
        account cannot reach what it must, or None to sign in now."""
        params = dict(record["p"])
        client = self.core.clients.get(record["c"]) if record["c"] else None
        if client is None and not record.get("r"):
            return error_page("invalid_client", "client_id is not registered")
        try:
            if client is None:  # the account pages: a second factor whenever the account has one
                strength = MFA if self.core.factors.available(profile.id) > PASSWORD else None
            else:
                strength = self._second_factor(Requirement.of(acr_request(params, self.acr), client.minimum_acr), profile,
                                               level(profile.assurance_level, PASSWORD))
        except AuthorizationError as exc:
            if take_json(self.core.store, f"ia:{uid}") is None:
                return error_page("interaction_expired", "this sign-in has already been completed or has expired")
            return self.respond(params["redirect_uri"], params, [("error", exc.error),
                                                                 ("error_description", exc.description)])
        if strength is None:
            return None
        record.update(s="mfa", m=self._pending_mfa(profile.id, amr, strength, client, params))
        put_json(self.core.store, f"ia:{uid}", record, ttl=self.core.settings.interaction_ttl)
        return Outcome(redirect=f"/interaction/{uid}")

    def account_interaction(self, browser_id: str, return_to: str, session: SsoSession | None = None) -> Outcome:
        """A sign-in for Yihao's own account pages, or a second factor stepping `session` up."""
        uid = random_token(16)
        record: dict[str, Any] = {"p": [], "b": browser_id, "x": random_token(24), "c": None, "s": "login",
                                  "u": None, "r": return_to}
        if session is not None:
            record.update(s="mfa", m=self._pending_mfa(session.account_id, session.amr, MFA, None, {}, sid=session.sid))
        put_json(self.core.store, f"ia:{uid}", record, ttl=self.core.settings.interaction_ttl)
        return Outcome(redirect=f"/interaction/{uid}")
