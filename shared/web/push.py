"""The Pub/Sub push envelope, parsed in one place for every service.

    {"message": {"data": base64, "attributes": {...}, "messageId": "...", "publishTime": "..."},
     "subscription": "projects/P/subscriptions/S", "deliveryAttempt": 3}

A body that is not this shape is a 400 (the sender is broken, not the message); the decoded data is
then validated as a versioned message by the service.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field(validation_alias=AliasChoices("messageId", "message_id"))


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: _Message
    subscription: str = ""
    delivery_attempt: int | None = Field(None, validation_alias=AliasChoices("deliveryAttempt", "delivery_attempt"))


@dataclass(frozen=True)
class Push:
    data: bytes
    attributes: dict[str, str]
    message_id: str
    subscription: str
    delivery_attempt: int | None


class BadEnvelope(ValueError):
    pass


def parse_push(body: bytes) -> Push:
    try:
        env = _Envelope.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<body>"
        raise BadEnvelope(f"not a Pub/Sub push envelope: {where}: {first['msg']}") from None
    try:
        data = base64.b64decode(env.message.data, validate=True)
    except (binascii.Error, ValueError):
        raise BadEnvelope("message.data is not base64") from None
    return Push(data, env.message.attributes, env.message.message_id, env.subscription, env.delivery_attempt)


def envelope(
    data: bytes,
    attributes: dict[str, str] | None = None,
    message_id: str = "1",
    subscription: str = "projects/p/subscriptions/s",
    delivery_attempt: int | None = None,
) -> dict:
    """Build an envelope as Pub/Sub would (for tests and local tools)."""
    body: dict = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {},
            "messageId": message_id,
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": subscription,
    }
    if delivery_attempt is not None:
        body["deliveryAttempt"] = delivery_attempt
    return body
