"""Pub/Sub adapters: the Publisher port and the dead-letter port on google-cloud-pubsub.

`publish` blocks on the publish future, so a handler reports success only once Pub/Sub has the
message (DESIGN rule 4); the client still batches concurrent publishes from many request threads.
Dead letters live on `<topic>-dead-letter` topics with a pull subscription each; `pull` leases them
and `ack` removes one only after replay republished it.
"""

from __future__ import annotations

import logging
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

from shared.deadletters import HeldLetter
from shared.errors import SystemicError, TransientError
from shared.messages import DeadLetter
from shared.publisher import DEAD_LETTER_TOPIC, dead_letter_attributes

log = logging.getLogger(__name__)
_SOURCE_ATTRS = "CloudPubSubDeadLetterSource"


class PubSubPublisher:
    def __init__(self, client: pubsub_v1.PublisherClient, project: str, timeout: float = 60.0) -> None:
        self.client = client
        self.project = project
        self.timeout = timeout

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        path = self.client.topic_path(self.project, topic)
        try:
            return str(self.client.publish(path, data, **attributes).result(timeout=self.timeout))
        except (gexc.PermissionDenied, gexc.NotFound) as exc:
            raise SystemicError(f"cannot publish to {topic}: {exc}") from None
        except Exception as exc:
            raise TransientError(f"publish to {topic} failed: {type(exc).__name__}: {exc}") from None


def _letter_from(received: Any, dead_letter_topic: str) -> DeadLetter:
    msg = received.message
    attrs = dict(msg.attributes)
    source_topic = attrs.get("source_topic") or dead_letter_topic.removesuffix("-dead-letter")
    if "error_class" in attrs:
        error_class, error = attrs["error_class"], attrs.get("error", "")
    else:  # forwarded by Pub/Sub itself after max delivery attempts: no reason but the count
        error_class = "MaxDeliveryAttempts"
        error = f"not acknowledged after {attrs.get(_SOURCE_ATTRS + 'DeliveryCount', '?')} deliveries"
    attempts = int(attrs.get(_SOURCE_ATTRS + "DeliveryCount", attrs.get("attempts", "1")) or 1)
    return DeadLetter(
        topic=source_topic,
        data=msg.data.decode("utf-8", errors="replace"),
        attributes=attrs,
        error_class=error_class,
        error=error,
        wallet=attrs.get("wallet"),
        attempts=attempts,
    )


class PubSubDeadLetters:
    """The dead-letter topics and their pull subscriptions (names from infra/resources.yaml)."""

    def __init__(
        self,
        publisher: PubSubPublisher,
        subscriber: pubsub_v1.SubscriberClient,
        project: str,
        subscriptions: dict[str, str],
    ) -> None:
        self.publisher = publisher
        self.subscriber = subscriber
        self.project = project
        self.subscriptions = subscriptions  # dead-letter topic -> its pull subscription

    def put(self, letter: DeadLetter) -> None:
        topic = DEAD_LETTER_TOPIC.get(letter.topic, f"{letter.topic}-dead-letter")
        self.publisher.publish(topic, letter.data.encode(), dead_letter_attributes(letter))

    def _path(self, subscription: str) -> str:
        return self.subscriber.subscription_path(self.project, subscription)

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

    def _by_subscription(self, handles: list[str]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for handle in handles:
            subscription, ack_id = handle.split("|", 1)
            grouped.setdefault(subscription, []).append(ack_id)
        return grouped

    def ack(self, handles: list[str]) -> None:
        for subscription, ack_ids in self._by_subscription(handles).items():
            self.subscriber.acknowledge(request={"subscription": self._path(subscription), "ack_ids": ack_ids})

    def release(self, handles: list[str]) -> None:
        for subscription, ack_ids in self._by_subscription(handles).items():
            self.subscriber.modify_ack_deadline(
                request={"subscription": self._path(subscription), "ack_ids": ack_ids, "ack_deadline_seconds": 0}
            )

    def depth(self) -> int:
        """Count by leasing and releasing at once (Cloud Monitoring's num_undelivered_messages is the
        production gauge; this is what works everywhere, emulator included, for an operator's /status)."""
        held = self.pull(10_000)
        self.release([h.handle for h in held])
        return len(held)
