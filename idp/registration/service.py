"""Registering (RFC 7591 §3) and managing (RFC 7592 §2) clients: the synchronous core of the endpoints.

Each function returns (status, JSON body or None, headers) for the handler to send.
"""
from __future__ import annotations

from typing import Any

from idp import events
from idp.clients import ClientInputError, RegisteredClient
from idp.core import Core
from idp.crypto import digest, equal, random_token
from idp.egress import Egress
from idp.registration import iat
from idp.registration.metadata import INVALID_METADATA, INVALID_REDIRECT, RULES, Policy, RegistrationError, keywords, parse
from idp.untrusted import parse_json

Reply = tuple[int, dict[str, Any] | None, dict[str, str]]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# RFC 7592 §2.2: values the server assigns, never sent back by the client
SERVER_ASSIGNED = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                   "client_id_issued_at")


def refusal(error: str, description: str, status: int = 400) -> Reply:
    headers = dict(NO_STORE)
    if status == 401:  # RFC 6750 §3
        headers["WWW-Authenticate"] = f'Bearer realm="yihao", error="{error}"'
    return status, {"error": error, "error_description": description}, headers


def bearer(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def describe(core: Core, client: RegisteredClient) -> dict[str, Any]:
    """The registered metadata as RFC 7591 §3.2.1 returns it, read through the same table."""
    out: dict[str, Any] = {"client_id": client.client_id, "client_id_issued_at": client.issued_at}
    for name, rule in RULES.items():
        value = getattr(client, rule.keyword(name) or "", None)
        if name == "jwks" and value is not None:  # kept as JSON text in the cached client
            value = parse_json(value)
        if value is not None and value != ():
            out[name] = list(value) if isinstance(value, tuple) else value
    out["response_types"] = list(client.response_types)
    out["registration_client_uri"] = f"{core.settings.issuer}/register/{client.client_id}"
    return out


def _client_error(exc: ClientInputError) -> RegistrationError:
    error = INVALID_REDIRECT if str(exc).startswith(("redirect_uri '", "at least one redirect_uri")) else INVALID_METADATA
    return RegistrationError(error, str(exc))


def _refused(exc: RegistrationError, client_id: str | None = None) -> Reply:
    events.record(events.CLIENT_REGISTRATION_REFUSED, outcome="failure", client_id=client_id, reason=exc.error)
    return refusal(exc.error, exc.description)


def register(core: Core, authorization: str | None, body: Any) -> Reply:
    """RFC 7591 §3: open, or with an initial access token spent in the same transaction as the INSERT."""
    grant = None
    if core.settings.registration == "token":
        token = bearer(authorization)
        grant = iat.check(core.engine, token) if token else None
        if grant is None:
            events.record(events.CLIENT_REGISTRATION_REFUSED, outcome="failure", reason="initial_access_token")
            return refusal("invalid_token", "an initial access token is required (Authorization: Bearer …); "
                           "the one sent is invalid, expired or used up" if token else
                           "an initial access token is required (Authorization: Bearer …)", 401)
    policy = Policy(Egress.from_settings(core.settings), allow_public_subject=bool(grant and grant.allow_public_subject))
    access = random_token(32)
    try:
        got = parse(body, policy)
        spend = (lambda session: iat.spend(session, grant)) if grant else None
        client, secret = core.clients.create(**keywords(got), registration_access_token=access, in_transaction=spend)
    except RegistrationError as exc:
        return _refused(exc)
    except ClientInputError as exc:
        return _refused(_client_error(exc))
    except iat.TokenSpent:
        return refusal("invalid_token", "the initial access token was used up or expired meanwhile", 401)
    events.record(events.CLIENT_CREATED, actor="registration", client_id=client.client_id)
    out = describe(core, client) | {"registration_access_token": access}
    if secret:
        out |= {"client_secret": secret, "client_secret_expires_at": 0}
    return 201, out, NO_STORE


def _managed(core: Core, client_id: str, authorization: str | None) -> RegisteredClient | Reply:
    """RFC 7592 §2: the client, if the registration access token is its own; one answer for every failure."""
    token = bearer(authorization)
    client = core.clients.get(client_id)
    if token is None or client is None or client.registration_access_digest is None \
            or not equal(digest(token), client.registration_access_digest):
        return refusal("invalid_token", "the registration access token is not valid for this client", 401)
    return client


def read(core: Core, client_id: str, authorization: str | None) -> Reply:
    client = _managed(core, client_id, authorization)
    if not isinstance(client, RegisteredClient):
        return client
    return 200, describe(core, client), NO_STORE


def update(core: Core, client_id: str, authorization: str | None, body: Any) -> Reply:
    """RFC 7592 §2.2: the request replaces every field; what it leaves out returns to its default."""
    client = _managed(core, client_id, authorization)
    if not isinstance(client, RegisteredClient):
        return client
    try:
        if not isinstance(body, dict):
            raise RegistrationError(INVALID_METADATA, "the request body must be a JSON object sent as application/json")
        if body.get("client_id") != client_id:
            raise RegistrationError(INVALID_METADATA, "client_id must be present and equal the client's own")
        sent = [name for name in SERVER_ASSIGNED if name in body]
        if sent:
            raise RegistrationError(INVALID_METADATA, f"{sent[0]} is assigned by the server and must not be sent")
        if "client_secret" in body and not client.check_client_secret(str(body["client_secret"])):
            raise RegistrationError(INVALID_METADATA, "client_secret does not match the issued secret")
        policy = Policy(Egress.from_settings(core.settings), allow_public_subject=client.subject_type == "public")
        updated = core.clients.update(client_id, **keywords(parse(body, policy)))
    except RegistrationError as exc:
        return _refused(exc, client_id)
    except ClientInputError as exc:
        return _refused(_client_error(exc), client_id)
    events.record(events.CLIENT_UPDATED, actor="registration", client_id=client_id)
    return 200, describe(core, updated), NO_STORE


def delete(core: Core, client_id: str, authorization: str | None) -> Reply:
    client = _managed(core, client_id, authorization)
    if not isinstance(client, RegisteredClient):
        return client
    core.clients.delete(client_id)
    events.record(events.CLIENT_DELETED, actor="registration", client_id=client_id)
    return 204, None, NO_STORE
