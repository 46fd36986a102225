"""The authlib seam: our request adapter is an OAuth2Request in every attribute authlib sets."""
from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError

from idp.oauth.requests import OAuthRequest


def test_the_adapter_sets_every_attribute_authlib_sets() -> None:
    theirs = OAuth2Request("POST", "https://op.example/token", headers={})
    ours = OAuthRequest("POST", "https://op.example/token", {}, (), [("grant_type", "client_credentials")])
    assert set(vars(theirs)) <= set(vars(ours))
    assert {name: getattr(ours, name) for name in vars(theirs) if name != "payload"} == {
        name: value for name, value in vars(theirs).items() if name != "payload"}
    assert ours.form == {"grant_type": "client_credentials"}


@pytest.mark.parametrize("uri", ["https://op.example/token", "http://127.0.0.1:8000/token", "http://localhost:8000/t",
                                 "https://op.example"])
def test_https_and_loopback_http_are_accepted(uri: str) -> None:
    assert OAuthRequest("POST", uri, {}, ()).uri == uri


@pytest.mark.parametrize("uri", ["http://op.example/token", "http://127.0.0.1:80@op.example/token", "ftp://op.example/",
                                 "op.example/token", "http://10.0.0.1/token"])
def test_other_transports_are_refused_as_authlib_refuses_them(uri: str) -> None:
    with pytest.raises(InsecureTransportError):
        OAuth2Request("POST", uri)
    with pytest.raises(InsecureTransportError):
        OAuthRequest("POST", uri, {}, ())
