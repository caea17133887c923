"""The Publisher port: put a message on a topic and return only once it is durable.

Adapters: `PubSubPublisher` (google-cloud-pubsub; lives in shared/gcp/pubsub.py) and the embedded
runner's in-process bus (`shared.embedded.bus.Bus`), which applies Pub/Sub's delivery rules.
"""

from __future__ import annotations

from typing import Protocol

from shared.messages import DeadLetter, Message

WALLETS = "wallets"
FILES = "files"
WALLETS_DEAD_LETTER = "wallets-dead-letter"
FILES_DEAD_LETTER = "files-dead-letter"
DEAD_LETTER_TOPIC = {WALLETS: WALLETS_DEAD_LETTER, FILES: FILES_DEAD_LETTER}


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        """Publish and block until the message is accepted; return its message id."""
        ...


def publish_message(publisher: Publisher, topic: str, message: Message) -> str:
    return publisher.publish(topic, message.encode(), message.attributes())


def dead_letter_attributes(dead: DeadLetter) -> dict[str, str]:
    """What a dead letter carries besides the original data: the original attributes plus the reason."""
    attrs = dict(dead.attributes)
    attrs.update(error_class=dead.error_class, error=dead.error[:1000], source_topic=dead.topic)
    if dead.wallet:
        attrs["wallet"] = dead.wallet
    return attrs
