"""Resource rules of the service: names, errors, subscription defaults and dead-letter messages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TypeVar

import grpc
from google.pubsub_v1 import PubsubMessage, Subscription, Topic

from emulators.pubsub.backlog import (
    DEFAULT_ACK_DEADLINE_SECONDS,
    DEFAULT_MAX_DELIVERY_ATTEMPTS,
    DEFAULT_RETENTION_SECONDS,
)

MAX_ACK_DEADLINE_SECONDS = 600
MAX_DELIVERY_ATTEMPTS = 100
_NAME = {
    "topic": re.compile(r"^projects/([^/]+)/topics/([^/]+)$"),
    "subscription": re.compile(r"^projects/([^/]+)/subscriptions/([^/]+)$"),
}
_T = TypeVar("_T", Topic, Subscription)


class ResourceError(Exception):
    """A request the real service refuses; `code` is the gRPC status it answers with."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def not_found(name: str) -> ResourceError:
    return ResourceError(grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={name}).")


def parse_name(name: str, kind: str) -> tuple[str, str]:
    """`projects/P/topics/ID` or `projects/P/subscriptions/ID` -> (P, ID), else INVALID_ARGUMENT."""
    match = _NAME[kind].match(name)
    if match is None:
        raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid {kind} name: {name!r}")
    return match.group(1), match.group(2)


def copy_resource(message: _T) -> _T:
    """A deep copy, so callers never share the store's objects."""
    return type(message).deserialize(type(message).serialize(message))


def normalise_subscription(sub: Subscription) -> None:
    """Refuse what the service refuses and fill in its defaults, in place.

    The service requires ack deadlines of 10-600 s, retention of at least 10 minutes and 5-100
    delivery attempts; smaller values are accepted here so tests run fast.
    """
    if not 0 <= sub.ack_deadline_seconds <= MAX_ACK_DEADLINE_SECONDS:
        raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "ack_deadline_seconds must be <= 600")
    sub.ack_deadline_seconds = sub.ack_deadline_seconds or DEFAULT_ACK_DEADLINE_SECONDS
    if "message_retention_duration" not in sub:
        sub.message_retention_duration = timedelta(seconds=DEFAULT_RETENTION_SECONDS)
    if "dead_letter_policy" in sub and sub.dead_letter_policy.dead_letter_topic:
        policy = sub.dead_letter_policy
        if not 0 <= policy.max_delivery_attempts <= MAX_DELIVERY_ATTEMPTS:
            raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "max_delivery_attempts must be <= 100")
        policy.max_delivery_attempts = policy.max_delivery_attempts or DEFAULT_MAX_DELIVERY_ATTEMPTS


def dead_letter_message(message: PubsubMessage, attempts: int, subscription: str) -> PubsubMessage:
    """What the service publishes to the dead-letter topic: the original plus its source attributes."""
    project, sub_id = parse_name(subscription, "subscription")
    attributes = dict(message.attributes)
    attributes.update(
        CloudPubSubDeadLetterSourceDeliveryCount=str(attempts),
        CloudPubSubDeadLetterSourceSubscription=sub_id,
        CloudPubSubDeadLetterSourceSubscriptionProject=project,
        # RFC 3339 here; the service's exact rendering of this value is not documented.
        CloudPubSubDeadLetterSourceTopicPublishTime=message.publish_time.rfc3339(),
    )
    return PubsubMessage(data=message.data, attributes=attributes, ordering_key=message.ordering_key)
