"""Authorization requests passed as a signed JWT (JAR, RFC 9101) or pushed beforehand (PAR, RFC 9126).

`resolve` turns what reached /authorize into the parameters the flow works with: those of the
pushed request a `urn:ietf:params:oauth:request_uri:` names (single use, any worker), or those of
the request object given by value (`request`) or by a registered https reference (`request_uri`).
RFC 9101 §6.3: only the request object's parameters are used, whatever the query says beside it;
its `client_id` must be the query's.
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Iterable

from joserfc import jws, jwt
from joserfc.errors import JoseError

from idp.client_keys import ASYMMETRIC_ALGS, NoKey
from idp.clients import RegisteredClient
from idp.crypto import digest, random_token
from idp.fetch import FetchError
from idp.oauth.assertion import LEEWAY, audience_ok, numeric
from idp.store.ephemeral import get_json, put_json, take_json
from idp.untrusted import parse_json

if TYPE_CHECKING:
    from idp.core import Core

PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"
JWT_CLAIMS = {"iss", "aud", "exp", "iat", "nbf", "jti", "sub"}
Items = list[tuple[str, str]]


class RequestRejected(Exception):
    """An error named by RFC 9101 §7 / RFC 9126 §2.3, with a description the client's developer can act on."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def _items(claims: dict[str, Any]) -> Items:
    """A request object's members as authorization parameters: objects (`claims`) as JSON text,
    numbers as decimals, arrays (`resource`) as repeated parameters."""
    out: Items = []
    for name, value in claims.items():
        if name in JWT_CLAIMS or value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, bool):
                out.append((name, "true" if one else "false"))
            elif isinstance(one, (dict, list)):
                out.append((name, json.dumps(one, separators=(",", ":"), ensure_ascii=False)))
            else:
                out.append((name, str(one)))
    return out


class RequestObjects:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.issuer = core.settings.issuer

    # -- /authorize ----------------------------------------------------------------------------
    def resolve(self, items: Items) -> Items:
        """The parameters to act on; the query's own when it carries neither request nor request_uri."""
        names = [k for k, _ in items]
        params = dict(items)
        client = self.core.clients.get(params.get("client_id", ""))
        if client is None:
            return items  # the flow reports the missing or unknown client
        if names.count("request") > 1 or names.count("request_uri") > 1:
            raise RequestRejected("invalid_request", "request or request_uri is repeated")
        request, request_uri = params.get("request"), params.get("request_uri")
        if request is not None and request_uri is not None:
            raise RequestRejected("invalid_request", "request and request_uri must not both be given")
        if request_uri is not None and request_uri.startswith(PAR_PREFIX):
            return self._redeem(request_uri, client)
        if self.core.settings.require_par or client.require_pushed_authorization_requests:
            raise RequestRejected("invalid_request", "this client must push its authorization requests to the "
                                                     "pushed authorization request endpoint first")
        if request_uri is not None:
            request = self._fetch(request_uri, client)
        return self.verify(request, client) if request is not None else items

    def _redeem(self, request_uri: str, client: RegisteredClient) -> Items:
        key = f"par:{digest(request_uri[len(PAR_PREFIX):])}"
        record = get_json(self.core.store, key)
        if isinstance(record, dict) and record.get("c") != client.client_id:  # RFC 9126 §4: bound to its client
            raise RequestRejected("invalid_request_uri", "request_uri was pushed by another client")
        if record is None or take_json(self.core.store, key) is None:  # single use, whichever worker is first
            raise RequestRejected("invalid_request_uri", "request_uri has expired or has already been used")
        return [(str(k), str(v)) for k, v in record["p"]]

    def _fetch(self, request_uri: str, client: RegisteredClient) -> str:
        """OIDC Core §6.2 / RFC 9101 §5.2: only a request_uri the client registered is fetched."""
        if request_uri not in client.request_uris:
            raise RequestRejected("invalid_request_uri", "request_uri is not one this client registered")
        try:
            body = self.core.fetcher.get(request_uri, "application/oauth-authz-req+jwt")
        except FetchError as exc:
            raise RequestRejected("invalid_request_uri", f"request_uri {exc}") from None
        return body.decode("ascii", errors="replace").strip()

    # -- the request object --------------------------------------------------------------------
    def verify(self, request: str, client: RegisteredClient) -> Items:
        """The parameters of a request object signed by `client` (or unsigned, if it registered `none`)."""
        if request.count(".") == 4:
            raise RequestRejected("invalid_request_object", "encrypted request objects are not supported")
        try:
            unverified = jws.extract_compact(request.encode("ascii"))
            header = unverified.headers()
        except (JoseError, ValueError, UnicodeEncodeError, RecursionError):
            raise RequestRejected("invalid_request_object", "request is not a signed JWT") from None
        alg = header.get("alg")
        registered = client.request_object_signing_alg
        if alg == "none":
            if registered != "none":  # RFC 9101 §10.2 / OIDC Core §6.1: unsigned only for clients that said so
                raise RequestRejected("invalid_request_object",
                                      "unsigned request objects are refused: the client did not register none")
            claims = self._unsigned(unverified.payload, request)
        else:
            allowed = (registered,) if registered else ASYMMETRIC_ALGS
            if alg not in allowed:
                raise RequestRejected("invalid_request_object", f"request object alg must be {' or '.join(allowed)}")
            claims = self._signed(request, header, client)
        self._check(claims, client, signed=alg != "none")
        return [("client_id", client.client_id), *((k, v) for k, v in _items(claims) if k != "client_id")]

    def _unsigned(self, payload: bytes, request: str) -> dict[str, Any]:
        if not request.endswith("."):
            raise RequestRejected("invalid_request_object", "an unsigned request object has no signature")
        try:
            claims = parse_json(payload)
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise RequestRejected("invalid_request_object", "the request object is not a JSON object")
        return claims

    def _signed(self, request: str, header: dict[str, Any], client: RegisteredClient) -> dict[str, Any]:
        kid = header.get("kid")
        try:
            key = self.core.client_keys.key(client, kid if isinstance(kid, str) else None, header["alg"])
            return jwt.decode(request, key, algorithms=[header["alg"]]).claims
        except NoKey as exc:
            raise RequestRejected("invalid_request_object", f"request object cannot be verified: {exc}") from None
        except JoseError:
            raise RequestRejected("invalid_request_object", "request object signature does not verify") from None
        except RecursionError:  # a signed payload nested too deeply for the JSON parser
            raise RequestRejected("invalid_request_object", "the request object is not a JSON object") from None

    def _check(self, claims: dict[str, Any], client: RegisteredClient, *, signed: bool) -> None:
        now = time.time()
        if "client_id" in claims and claims["client_id"] != client.client_id:  # RFC 9101 §5
            raise RequestRejected("invalid_request_object",
                                  "client_id in the request object does not match the client_id parameter")
        if signed and claims.get("iss") != client.client_id:  # RFC 9101 §10.2: who signed it
            raise RequestRejected("invalid_request_object", "request object iss must be the client_id")
        if signed and not audience_ok(claims.get("aud"), {self.issuer}):  # RFC 9101 §10.2: for whom
            raise RequestRejected("invalid_request_object", "request object aud must be the issuer")
        exp, nbf = numeric(claims, "exp"), numeric(claims, "nbf")
        if ("exp" in claims and exp is None) or (exp is not None and exp + LEEWAY < now):
            raise RequestRejected("invalid_request_object", "request object has expired")
        if nbf is not None and nbf > now + LEEWAY:
            raise RequestRejected("invalid_request_object", "request object is not valid yet")
        if "request" in claims or "request_uri" in claims:
            raise RequestRejected("invalid_request_object", "a request object must not hold request or request_uri")

    # -- /par ----------------------------------------------------------------------------------
    def push(self, client: RegisteredClient, items: Iterable[tuple[str, str]]) -> tuple[str, int]:
        """Keep validated parameters for one use within par_ttl; returns the request_uri (RFC 9126 §2.2)."""
        reference = random_token(32)
        ttl = self.core.settings.par_ttl
        put_json(self.core.store, f"par:{digest(reference)}", {"c": client.client_id, "p": list(items)}, ttl=ttl)
        return PAR_PREFIX + reference, ttl
