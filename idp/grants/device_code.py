"""The device authorization grant (RFC 8628): the device authorization endpoint (§3.1, §3.2) and the
device_code grant (§3.4), where a kiosk polls until the person has answered in a browser."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant

from idp.clients import DEVICE_CODE
from idp.crypto import random_token
from idp.device import DeviceCodes, DeviceRefused
from idp.grants.common import check_scope, person_tokens


class DeviceAuthorization(DeviceAuthorizationEndpoint):
    """RFC 8628 §3.1: a client allowed the device grant asks for codes; authlib builds the response."""

    def __init__(self, server: Any, devices: DeviceCodes, verification_uri: str) -> None:
        super().__init__(server)
        self.devices = devices
        self.verification_uri = verification_uri
        self.EXPIRES_IN, self.INTERVAL = devices.ttl, devices.interval

    def authenticate_client(self, request: Any) -> Any:
        client = super().authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE):
            raise UnauthorizedClientError("the client is not allowed the device_code grant")
        check_scope(client, request.payload.scope)
        return client

    def generate_device_code(self) -> str:
        return random_token(32)

    def generate_user_code(self) -> str:
        return self.devices.reserve_user_code()

    def get_verification_uri(self) -> str:
        return self.verification_uri

    def save_device_credential(self, client_id: str, scope: str | None, data: dict[str, Any]) -> None:
        self.devices.save(client_id, scope or "", data["device_code"], data["user_code"])


class DeviceCodeGrant(_DeviceCodeGrant):
    devices: DeviceCodes  # set by the server factory

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("the client is not allowed the device_code grant")
        device_code = self.request.form.get("device_code")
        if not device_code:
            raise InvalidRequestError("device_code is required")
        self.request.client = client
        try:  # pending, slow_down, expired, denied or spent: RFC 8628 §3.5 errors
            self.request.user, self.request.device_scope = self.devices.poll(device_code, client.client_id)
        except DeviceRefused as refused:
            raise OAuth2Error(refused.description, error=refused.error) from None

    def create_token_response(self) -> tuple[int, Any, list]:
        token = person_tokens(self, self.request.user, self.request.device_scope, (), nonce=None)
        return 200, token, self.TOKEN_RESPONSE_HEADER
