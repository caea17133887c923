"""The emulator's in-memory state: topics, subscriptions and each subscription's backlog.

One re-entrant lock guards everything; `changed` (a condition on that lock) is notified whenever a
message may have become deliverable, so Pull, StreamingPull and the push dispatcher can wait on it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import grpc
from google.pubsub_v1 import PubsubMessage, PushConfig, Subscription, Topic

from emulators.pubsub.backlog import Backlog, Delivery, DeliveryPolicy
from emulators.pubsub.resources import (
    ResourceError,
    copy_resource,
    dead_letter_message,
    normalise_subscription,
    not_found,
    parse_name,
)

DELETED_TOPIC = "_deleted-topic_"


@dataclass
class _Subscription:
    config: Subscription
    backlog: Backlog


class Store:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.changed = threading.Condition(threading.RLock())
        self.closed = False
        self._clock = clock
        self._topics: dict[str, Topic] = {}
        self._subs: dict[str, _Subscription] = {}
        self._message_ids = itertools.count(1)

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    # Topics

    def create_topic(self, topic: Topic) -> Topic:
        parse_name(topic.name, "topic")
        with self.changed:
            if topic.name in self._topics:
                raise ResourceError(grpc.StatusCode.ALREADY_EXISTS, f"topic exists: {topic.name}")
            topic = copy_resource(topic)
            topic.state = Topic.State.ACTIVE  # type: ignore[assignment]
            self._topics[topic.name] = topic
            return copy_resource(topic)

    def get_topic(self, name: str) -> Topic:
        with self.changed:
            return copy_resource(self._topic(name))

    def update_topic(self, topic: Topic, paths: Iterable[str]) -> Topic:
        with self.changed:
            current = self._topic(topic.name)
            for path in paths:
                field = path.split(".")[0]
                setattr(current, field, getattr(topic, field))
            return copy_resource(current)

    def list_topics(self, project: str) -> list[Topic]:
        with self.changed:
            return [copy_resource(t) for n, t in sorted(self._topics.items()) if n.startswith(f"{project}/topics/")]

    def delete_topic(self, name: str) -> None:
        with self.changed:
            self._topic(name)
            del self._topics[name]
            for sub in self._subs.values():
                if sub.config.topic == name:
                    sub.config.topic = DELETED_TOPIC

    def topic_subscriptions(self, name: str) -> list[str]:
        with self.changed:
            self._topic(name)
            return sorted(n for n, s in self._subs.items() if s.config.topic == name)

    def publish(self, topic: str, messages: Iterable[PubsubMessage]) -> list[str]:
        """Store each message once per subscription of `topic`; return the message ids in order."""
        with self.changed:
            self._topic(topic)
            now, ids = self._clock(), []
            for message in messages:
                stored = PubsubMessage(
                    data=message.data,
                    attributes=dict(message.attributes),
                    ordering_key=message.ordering_key,
                    message_id=str(next(self._message_ids)),
                    publish_time=datetime.now(UTC),
                )
                for sub in self._subs.values():
                    if sub.config.topic == topic:
                        sub.backlog.add(stored, now)
                ids.append(stored.message_id)
            self.changed.notify_all()
            return ids

    # Subscriptions

    def create_subscription(self, sub: Subscription) -> Subscription:
        _, sub_id = parse_name(sub.name, "subscription")
        with self.changed:
            if sub.name in self._subs:
                raise ResourceError(grpc.StatusCode.ALREADY_EXISTS, f"subscription exists: {sub.name}")
            self._topic(sub.topic)
            sub = copy_resource(sub)
            self._validate(sub)
            sub.state = Subscription.State.ACTIVE  # type: ignore[assignment]
            self._subs[sub.name] = _Subscription(sub, Backlog(sub_id))
            return copy_resource(sub)

    def get_subscription(self, name: str) -> Subscription:
        with self.changed:
            return copy_resource(self._sub(name).config)

    def update_subscription(self, sub: Subscription, paths: Iterable[str]) -> Subscription:
        with self.changed:
            updated = copy_resource(self._sub(sub.name).config)
            for path in paths:
                field = path.split(".")[0]
                setattr(updated, field, getattr(sub, field))
            self._validate(updated)
            self._subs[sub.name].config = updated
            self.changed.notify_all()
            return copy_resource(updated)

    def modify_push_config(self, name: str, push_config: PushConfig) -> None:
        with self.changed:
            self._sub(name).config.push_config = push_config
            self.changed.notify_all()

    def list_subscriptions(self, project: str) -> list[Subscription]:
        with self.changed:
            prefix = f"{project}/subscriptions/"
            return [copy_resource(s.config) for n, s in sorted(self._subs.items()) if n.startswith(prefix)]

    def delete_subscription(self, name: str) -> None:
        with self.changed:
            self._sub(name)
            del self._subs[name]
            self.changed.notify_all()

    def push_subscriptions(self) -> dict[str, Subscription]:
        with self.changed:
            return {n: copy_resource(s.config) for n, s in self._subs.items() if s.config.push_config.push_endpoint}

    # Delivery

    def lease(self, name: str, max_messages: int, deadline: float | None = None, wait: float = 0.0) -> list[Delivery]:
        """Lease up to `max_messages` due messages for `deadline` seconds (default: the ack deadline).

        Waits up to `wait` seconds for a first message; returns [] when none came or on close.
        """
        end = self._clock() + wait
        with self.changed:
            while True:
                sub = self._sub(name)
                policy = self._policy(sub.config)
                leased, dead = sub.backlog.lease(policy, max_messages, deadline or policy.ack_deadline, self._clock())
                self._dead_letter(sub.config, dead)
                remaining = end - self._clock()
                if leased or remaining <= 0 or self.closed:
                    return leased
                due = sub.backlog.next_due(self._clock())
                self.changed.wait(remaining if due is None else min(remaining, due))

    def acknowledge(self, name: str, ack_ids: Iterable[str]) -> None:
        with self.changed:
            backlog = self._sub(name).backlog
            for ack_id in ack_ids:
                backlog.ack(ack_id)
            self.changed.notify_all()

    def modify_ack_deadline(self, name: str, ack_ids: Iterable[str], seconds: float) -> None:
        """Extend leases by `seconds` from now; 0 nacks them (redelivery after the retry back-off)."""
        with self.changed:
            sub = self._sub(name)
            policy, now = self._policy(sub.config), self._clock()
            for ack_id in ack_ids:
                if seconds > 0:
                    sub.backlog.extend(ack_id, seconds, now)
                else:
                    dead = sub.backlog.nack(ack_id, policy, now)
                    self._dead_letter(sub.config, [dead] if dead else [])
            self.changed.notify_all()

    def next_due(self, name: str) -> float | None:
        """Seconds until subscription `name` may have something to deliver (None: nothing waits)."""
        with self.changed:
            sub = self._subs.get(name)
            if sub is None:
                return None
            self._dead_letter(sub.config, sub.backlog.sweep(self._policy(sub.config), self._clock()))
            return sub.backlog.next_due(self._clock())

    # Helpers (lock held)

    def _topic(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise not_found(name)
        return topic

    def _sub(self, name: str) -> _Subscription:
        sub = self._subs.get(name)
        if sub is None:
            raise not_found(name)
        return sub

    def _policy(self, config: Subscription) -> DeliveryPolicy:
        policy = DeliveryPolicy.of(config)
        if policy.max_delivery_attempts is not None and config.dead_letter_policy.dead_letter_topic not in (
            self._topics
        ):
            # Dead-letter topic deleted: keep redelivering, as if there were no policy.
            return replace(policy, max_delivery_attempts=None)
        return policy

    def _validate(self, sub: Subscription) -> None:
        normalise_subscription(sub)
        if "dead_letter_policy" in sub and sub.dead_letter_policy.dead_letter_topic:
            self._topic(sub.dead_letter_policy.dead_letter_topic)

    def _dead_letter(self, config: Subscription, dead: list[tuple[PubsubMessage, int]]) -> None:
        """Forward messages that ran out of delivery attempts to the dead-letter topic."""
        if dead:
            forwarded = [dead_letter_message(message, attempts, config.name) for message, attempts in dead]
            self.publish(config.dead_letter_policy.dead_letter_topic, forwarded)
