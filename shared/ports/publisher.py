"""The Publisher port: put a message on a topic and return only once it is durable.

Adapters: `PubSubPublisher` (shared/adapters/gcp/pubsub.py) and the embedded runner's in-process bus
(`shared/adapters/local/bus.py`), which applies Pub/Sub's delivery rules.

Handlers name topics by their role (`Topic`); the Pub/Sub adapter maps each role to the topic that
infra/resources.yaml declares for it (shared/resources.py), so a renamed topic is renamed in one file.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from shared.core.messages import Message


class Topic(StrEnum):
    WALLETS = "wallets"  # WalletTask: work for the fetchers
    FILES = "files"  # FileReady: work for the loader
    WALLETS_DEAD_LETTER = "wallets-dead-letter"
    FILES_DEAD_LETTER = "files-dead-letter"

    @property
    def dead_letter(self) -> Topic:
        return Topic(f"{self.value.removesuffix('-dead-letter')}-dead-letter")


class Publisher(Protocol):
    def publish(self, topic: Topic, data: bytes, attributes: dict[str, str]) -> str:
        """Publish and block until the message is accepted; return its message id."""
        ...


def publish_message(publisher: Publisher, topic: Topic, message: Message) -> str:
    return publisher.publish(topic, message.encode(), message.attributes())
