"""Clients' public keys (RFC 7591 `jwks` or `jwks_uri`): the keys that verify their client
assertions (RFC 7523) and request objects (RFC 9101).

A fetched key set is cached in the ephemeral store, so every worker shares one copy, and briefly
in process. A `kid` the cached set lacks (the client rotated its keys) causes one fetch again, at
most once per `jwks_refetch_interval` for the whole deployment, so unknown kids cannot make us
hammer the client's server.
"""
from __future__ import annotations

import functools
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from idp.crypto import digest
from idp.fetch import Fetcher, FetchError
from idp.untrusted import parse_json

if TYPE_CHECKING:
    from idp.clients import RegisteredClient
    from idp.store.ephemeral import EphemeralStore

ASYMMETRIC_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
HMAC_ALGS = ("HS256",)
REQUEST_OBJECT_ALGS = (*ASYMMETRIC_ALGS, "none")
MAX_KEYS = 20
_KEY_TYPES = {"RS256": ("RSA", None), "PS256": ("RSA", None), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
_LOCAL_MAX_AGE = 30.0  # seconds a worker trusts its own copy before reading the shared one


class NoKey(Exception):
    """No key can verify the token; the message says why, for the client's developer."""


def parse_jwks(value: Any) -> KeySet:
    """A JWK Set of public signing keys (RFC 7517 §5), or ValueError saying what is wrong with it."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise ValueError("must be a JWK Set: an object with a non-empty keys array")
    if len(value["keys"]) > MAX_KEYS:
        raise ValueError(f"must hold at most {MAX_KEYS} keys")
    if any(not isinstance(k, dict) or "d" in k or k.get("kty") == "oct" for k in value["keys"]):
        raise ValueError("must hold public keys only")
    try:
        return KeySet.import_key_set(value)
    except (JoseError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(f"holds a key that cannot be read ({exc})") from None


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> KeySet:
    return parse_jwks(parse_json(text))


def _pick(keys: KeySet, kid: str | None, alg: str) -> Key | None:
    """The key named by `kid` (or the only one, without a kid) that can verify `alg`."""
    kty, crv = _KEY_TYPES[alg]
    fits = [k for k in keys.keys if k.key_type == kty and (crv is None or k.get("crv") == crv)
            and k.get("alg") in (None, alg) and k.get("use") in (None, "sig")]
    if kid is not None:
        fits = [k for k in fits if k.kid == kid]
    return fits[0] if len(fits) == 1 else None


class ClientKeys:
    """Resolves the key that verifies a client's JWT; synchronous and thread-safe."""

    def __init__(self, store: EphemeralStore, fetcher: Fetcher, *, cache_ttl: int, refetch_interval: int) -> None:
        self._store = store
        self._fetcher = fetcher
        self._cache_ttl = cache_ttl
        self._refetch_interval = refetch_interval
        self._local: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def key(self, client: RegisteredClient, kid: str | None, alg: str) -> Key:
        if alg not in _KEY_TYPES:
            raise NoKey(f"alg {alg} is not an asymmetric signature algorithm")
        if client.jwks is not None:
            found = _pick(_parsed(client.jwks), kid, alg)
        elif client.jwks_uri is not None:
            found = _pick(self._fetched(client.jwks_uri, fresh=False), kid, alg)
            if found is None and self._may_refetch(client.jwks_uri):  # perhaps the client rotated its keys
                found = _pick(self._fetched(client.jwks_uri, fresh=True), kid, alg)
        else:
            raise NoKey("the client has registered no jwks or jwks_uri")
        if found is None:
            named = f"kid {kid!r}" if kid is not None else "no kid (and the client has more than one key)"
            raise NoKey(f"no {alg} key of the client matches {named}")
        return found

    def _may_refetch(self, uri: str) -> bool:
        return self._store.add(f"jwks-refetch:{digest(uri)}", b"1", ttl=self._refetch_interval)

    def _fetched(self, uri: str, *, fresh: bool) -> KeySet:
        key = f"jwks:{digest(uri)}"
        now = time.monotonic()
        text: str | None = None
        if not fresh:
            hit = self._local.get(uri)
            if hit is not None and hit[0] > now:
                text = hit[1]
            else:
                stored = self._store.get(key)
                text = stored.decode() if stored is not None else None
        if text is None:
            text = self._fetch(uri)
            self._store.put(key, text.encode(), ttl=self._cache_ttl)
        with self._lock:
            if len(self._local) > 1000:
                self._local.clear()
            self._local[uri] = (now + min(_LOCAL_MAX_AGE, self._cache_ttl), text)
        return _parsed(text)

    def _fetch(self, uri: str) -> str:
        """Fetch and check the set; a failure is remembered for the refetch interval, so assertions
        naming a client whose server is down do not make every worker call it again and again."""
        failed = f"jwks-failed:{digest(uri)}"
        remembered = self._store.get(failed)
        if remembered is not None:
            raise NoKey(remembered.decode())
        try:
            body = self._fetcher.get(uri, "application/jwk-set+json, application/json")
            text = json.dumps(parse_json(body), separators=(",", ":"), sort_keys=True)
            _parsed(text)
        except (FetchError, ValueError) as exc:  # ValueError: bad JSON or not a set of public keys
            why = (f"the client's jwks_uri {exc}" if isinstance(exc, FetchError)
                   else f"the client's jwks_uri does not hold a usable JWK Set ({exc})")
            self._store.put(failed, why.encode(), ttl=self._refetch_interval)
            raise NoKey(why) from None
        return text
