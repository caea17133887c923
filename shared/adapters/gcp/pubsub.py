"""Pub/Sub adapters: the Publisher port, and the dead-letter sink and inbox (shared/ports/deadletters.py).

`publish` blocks on the publish future, so a handler reports success only once Pub/Sub has the
message (design rule 4); the client still batches concurrent publishes from many request threads.
Topics are named by role in the code and mapped here to the names infra/resources.yaml gives them.
A service's dead letter is published to the dead-letter topic of the topic it came from; Pub/Sub
forwards there too after the last delivery attempt; the dispatcher pulls both kinds from the topics'
pull subscriptions (the inbox) into the dead-letter table.
"""

from __future__ import annotations

import logging
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

from shared.core.errors import SystemicError, TransientError
from shared.core.messages import DeadLetter
from shared.ports.deadletters import HeldLetter
from shared.ports.publisher import Topic

log = logging.getLogger(__name__)
_SOURCE_ATTRS = "CloudPubSubDeadLetterSource"
_OUR_ATTRIBUTES = ("error_class", "error", "source_topic")


class PubSubPublisher:
    def __init__(
        self, client: pubsub_v1.PublisherClient, project: str, topics: dict[Topic, str], timeout: float = 60.0
    ) -> None:
        self.client = client
        self.project = project
        self.topics = topics  # role -> the topic's name (shared.resources.topic_names)
        self.timeout = timeout

    def publish(self, topic: Topic, data: bytes, attributes: dict[str, str]) -> str:
        name = self.topics[Topic(topic)]
        path = self.client.topic_path(self.project, name)
        try:
            return str(self.client.publish(path, data, **attributes).result(timeout=self.timeout))
        except (gexc.PermissionDenied, gexc.NotFound) as exc:
            raise SystemicError(f"cannot publish to {name}: {exc}") from None
        except Exception as exc:
            raise TransientError(f"publish to {name} failed: {type(exc).__name__}: {exc}") from None


def dead_letter_attributes(dead: DeadLetter) -> dict[str, str]:
    """What a dead letter carries besides the original data: the original attributes plus the reason
    (an attribute value is at most 1,024 bytes)."""
    attrs = {k: v for k, v in dead.attributes.items() if k not in _OUR_ATTRIBUTES}
    attrs.update(error_class=dead.error_class, error=dead.error[:1000], source_topic=dead.topic)
    if dead.wallet:
        attrs["wallet"] = dead.wallet
    return attrs


def original_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """The attributes a message had before it was dead-lettered (what a replay publishes again)."""
    return {k: v for k, v in attributes.items() if k not in _OUR_ATTRIBUTES and not k.startswith(_SOURCE_ATTRS)}


class PubSubDeadLetterSink:
    """put(): publish the letter to the dead-letter topic of the topic it came from."""

    def __init__(self, publisher: PubSubPublisher) -> None:
        self.publisher = publisher

    def put(self, letter: DeadLetter) -> None:
        self.publisher.publish(Topic(letter.topic).dead_letter, letter.data.encode(), dead_letter_attributes(letter))


def _letter_from(received: Any, source_topic: Topic) -> DeadLetter:
    msg = received.message
    attrs = dict(msg.attributes)
    attempts = int(attrs.get(_SOURCE_ATTRS + "DeliveryCount", attrs.get("attempts", "1")) or 1)
    if "error_class" in attrs:
        error_class, error = attrs["error_class"], attrs.get("error", "")
    else:  # forwarded by Pub/Sub itself after max delivery attempts: no reason but the count
        error_class, error = "MaxDeliveryAttempts", f"not acknowledged after {attempts} deliveries"
    return DeadLetter(
        topic=attrs.get("source_topic") or source_topic,
        data=msg.data.decode("utf-8", errors="replace"),
        attributes=original_attributes(attrs),
        error_class=error_class,
        error=error,
        wallet=attrs.get("wallet"),
        attempts=attempts,
    )


class PubSubDeadLetterInbox:
    """The dead-letter topics' pull subscriptions: letters on their way to the dead-letter table."""

    def __init__(self, subscriber: pubsub_v1.SubscriberClient, project: str, subscriptions: dict[Topic, str]) -> None:
        self.subscriber = subscriber
        self.project = project
        self.subscriptions = subscriptions  # the topic a letter came from -> its dead-letter pull subscription

    def _path(self, subscription: str) -> str:
        return str(self.subscriber.subscription_path(self.project, subscription))

    def pull(self, max_letters: int) -> list[HeldLetter]:
        held: list[HeldLetter] = []
        for topic, subscription in self.subscriptions.items():
            while len(held) < max_letters:
                response = self.subscriber.pull(
                    request={
                        "subscription": self._path(subscription),
                        "max_messages": min(1000, max_letters - len(held)),
                    },
                    timeout=10,
                )
                if not response.received_messages:
                    break
                for received in response.received_messages:
                    held.append(HeldLetter(f"{subscription}|{received.ack_id}", _letter_from(received, topic)))
        return held

    def ack(self, handles: list[str]) -> None:
        grouped: dict[str, list[str]] = {}
        for handle in handles:
            subscription, ack_id = handle.split("|", 1)
            grouped.setdefault(subscription, []).append(ack_id)
        for subscription, ack_ids in grouped.items():
            self.subscriber.acknowledge(request={"subscription": self._path(subscription), "ack_ids": ack_ids})
