"""Plain OAuth 2 upstreams: who the person is comes from the upstream's userinfo answer, not an ID token.

Such an upstream signs nothing we could verify, so what it says is only as good as the TLS channel
to its userinfo endpoint and the access token we just obtained with PKCE and `state`. Its answer is
mapped to our claims by the upstream's `claim_map` (our claim -> a dotted path into the JSON, e.g.
`sub = data.openid`, `name = profile.real_name`, `id_number = cert.no`); the mapped claims then meet
the same trust policy and linking rules as an ID token's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from federation.remote import UpstreamError, UpstreamInputError, fetch
from idp.untrusted import parse_json

if TYPE_CHECKING:
    from federation.upstream import UpstreamConfig

SUBJECT = "sub"
# The claims a mapping may name; everything else in the userinfo answer is ignored.
MAPPABLE = (SUBJECT, "name", "id_number", "email", "phone_number", "acr")
MAX_SEGMENTS = 8


def check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    """A claim mapping that names the subject and only claims we know, each by a well-formed dotted path."""
    if SUBJECT not in mapping:
        raise UpstreamInputError("the claim mapping must name the field that is the subject (sub=FIELD)")
    unknown = set(mapping) - set(MAPPABLE)
    if unknown:
        raise UpstreamInputError(f"the claim mapping may name {' '.join(MAPPABLE)}, not {sorted(unknown)[0]!r}")
    for claim, path in mapping.items():
        segments = path.split(".") if isinstance(path, str) else [""]
        if not 0 < len(path) <= 255 or len(segments) > MAX_SEGMENTS or not all(s.strip() == s != "" for s in segments):
            raise UpstreamInputError(f"the claim mapping for {claim} is not a dotted path: {path!r}")
    return {claim: mapping[claim] for claim in MAPPABLE if claim in mapping}


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (`profile.name`, `emails.0.address`), or None."""
    node = document
    for segment in path.split("."):
        if isinstance(node, dict):
            node = node.get(segment)
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return None
    return node


def _text(value: Any) -> str | None:
    """A claim value as text: strings, and integers (many upstreams number their users); nothing else."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= 255 else None


def mapped_claims(upstream: UpstreamConfig, document: dict[str, Any]) -> dict[str, Any]:
    """Our claims from the upstream's userinfo answer; UpstreamError when it does not name the subject."""
    subject = _text(lookup(document, upstream.claim_map[SUBJECT]))
    if subject is None:
        raise UpstreamError("upstream_no_subject",
                            f"the userinfo answer has no usable subject at {upstream.claim_map[SUBJECT]!r}")
    claims: dict[str, Any] = {SUBJECT: subject}
    for claim, path in upstream.claim_map.items():
        value = _text(lookup(document, path)) if claim != SUBJECT else None
        if value is not None:
            claims[claim] = value
    return claims


def userinfo(http: httpx.Client, upstream: UpstreamConfig, token: dict[str, Any]) -> dict[str, Any]:
    """The upstream's userinfo answer for the access token in `token` (RFC 6750 §2.1), mapped."""
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise UpstreamError("upstream_invalid_response", "the token response has no access token")
    if str(token.get("token_type", "bearer")).lower() != "bearer":  # RFC 6749 §7.1: we only know Bearer
        raise UpstreamError("upstream_invalid_response", "the token response's token_type is not Bearer")
    url = str(upstream.userinfo_endpoint)
    status, body = fetch(http, url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    if status in (401, 403):
        raise UpstreamError("upstream_error", f"the userinfo endpoint refused the access token ({status})")
    if status >= 500:
        raise UpstreamError("upstream_unavailable", f"the userinfo endpoint answered {status}")
    if status != 200:
        raise UpstreamError("upstream_invalid_response", f"the userinfo endpoint answered {status}")
    try:
        document = parse_json(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise UpstreamError("upstream_invalid_response", "the userinfo answer is not a JSON object")
    return mapped_claims(upstream, document)
