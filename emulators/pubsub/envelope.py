"""What a push delivery sends: the wrapped JSON envelope and, with `oidc_token`, a fake ID token."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from google.pubsub_v1 import PushConfig

from emulators.pubsub.backlog import Delivery

OIDC_ISSUER = "https://accounts.google.com"
OIDC_LIFETIME_SECONDS = 3600


def envelope(delivery: Delivery, subscription: str) -> dict[str, Any]:
    """The body of a wrapped push request, as the service sends it (both key spellings included)."""
    message = delivery.message
    publish_time = message.publish_time.rfc3339()
    body: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(message.data).decode("ascii"),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "message_id": message.message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
        },
        "subscription": subscription,
    }
    if message.ordering_key:
        body["message"]["orderingKey"] = message.ordering_key
    if delivery.delivery_attempt:  # only set when the subscription has a dead-letter policy
        body["deliveryAttempt"] = delivery.delivery_attempt
    return body


def push_request(
    delivery: Delivery, subscription: str, push_config: PushConfig, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the POST for one delivery."""
    headers = {"Content-Type": "application/json"}
    if "oidc_token" in push_config:
        audience = push_config.oidc_token.audience or push_config.push_endpoint
        token = fake_oidc_token(audience, push_config.oidc_token.service_account_email, now)
        headers["Authorization"] = f"Bearer {token}"
    return json.dumps(envelope(delivery, subscription)).encode(), headers


def fake_oidc_token(audience: str, email: str, now: float | None = None) -> str:
    """An UNSIGNED JWT (`alg: none`) with the claims Google's push ID tokens carry.

    Enough for a service that reads the claims; any real signature check rejects it, which is the
    point: services verify tokens only when configured to, and never against this emulator.
    """
    issued = int(time.time() if now is None else now)
    claims = {
        "aud": audience,
        "azp": email,
        "email": email,
        "email_verified": True,
        "iss": OIDC_ISSUER,
        "sub": email,
        "iat": issued,
        "exp": issued + OIDC_LIFETIME_SECONDS,
    }
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}."


def _b64url(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
