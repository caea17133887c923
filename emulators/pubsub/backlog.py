"""One subscription's undelivered messages: leases, redelivery back-off, retention, dead-letter counts.

Not thread-safe on its own: the `Store` calls it with its lock held. Times are `time.monotonic()`
seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from google.pubsub_v1 import PubsubMessage, Subscription

DEFAULT_ACK_DEADLINE_SECONDS = 10
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600
# Without a retry policy the real service redelivers a nacked message "immediately"; a short pause
# keeps a push endpoint that always fails from spinning the dispatcher.
DEFAULT_REDELIVERY_DELAY_SECONDS = 0.1
# Defaults of a retry policy whose fields are left empty (cloud.google.com/pubsub/docs/handling-failures).
DEFAULT_MIN_BACKOFF_SECONDS = 10.0
DEFAULT_MAX_BACKOFF_SECONDS = 600.0
DEFAULT_MAX_DELIVERY_ATTEMPTS = 5


@dataclass(frozen=True)
class DeliveryPolicy:
    """The parts of a subscription's configuration that decide when a message is delivered again."""

    ack_deadline: float
    retention: float
    min_backoff: float | None
    """None when the subscription has no retry policy."""
    max_backoff: float
    max_delivery_attempts: int | None
    """None without a dead-letter policy."""

    @classmethod
    def of(cls, sub: Subscription) -> DeliveryPolicy:
        has_retry = "retry_policy" in sub
        has_dead_letter = "dead_letter_policy" in sub and bool(sub.dead_letter_policy.dead_letter_topic)
        retry = sub.retry_policy
        return cls(
            ack_deadline=float(sub.ack_deadline_seconds or DEFAULT_ACK_DEADLINE_SECONDS),
            retention=_seconds(sub, "message_retention_duration", DEFAULT_RETENTION_SECONDS),
            min_backoff=_seconds(retry, "minimum_backoff", DEFAULT_MIN_BACKOFF_SECONDS) if has_retry else None,
            max_backoff=_seconds(retry, "maximum_backoff", DEFAULT_MAX_BACKOFF_SECONDS),
            max_delivery_attempts=(
                sub.dead_letter_policy.max_delivery_attempts or DEFAULT_MAX_DELIVERY_ATTEMPTS
                if has_dead_letter
                else None
            ),
        )

    def backoff(self, attempts: int) -> float:
        """Pause before the next delivery after `attempts` failed ones: doubling from min up to max."""
        if self.min_backoff is None:
            return DEFAULT_REDELIVERY_DELAY_SECONDS
        return min(self.min_backoff * 2 ** max(attempts - 1, 0), max(self.max_backoff, self.min_backoff))


def _seconds(message: object, field: str, default: float) -> float:
    if field not in message:  # type: ignore[operator]
        return default
    return getattr(message, field).total_seconds() or default


@dataclass(frozen=True)
class Delivery:
    """One lease handed to a subscriber."""

    ack_id: str
    message: PubsubMessage
    delivery_attempt: int
    """1 on the first delivery; 0 without a dead-letter policy, as the service reports it."""


@dataclass
class _Entry:
    message: PubsubMessage
    published_at: float
    attempts: int = 0
    available_at: float = 0.0
    ack_id: str | None = None
    lease_deadline: float | None = None
    """Set while a subscriber holds the message."""


_ack_ids = itertools.count(1)


class Backlog:
    def __init__(self, subscription_id: str) -> None:
        self._prefix = subscription_id
        self._entries: dict[str, _Entry] = {}  # by message id, in publish order
        self._acks: dict[str, str] = {}  # ack id -> message id

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, message: PubsubMessage, now: float) -> None:
        self._entries[message.message_id] = _Entry(message, published_at=now, available_at=now)

    def lease(
        self, policy: DeliveryPolicy, max_messages: int, deadline: float, now: float
    ) -> tuple[list[Delivery], list[tuple[PubsubMessage, int]]]:
        """Lease up to `max_messages` due messages; also return the messages to dead-letter."""
        dead = self.sweep(policy, now)
        out: list[Delivery] = []
        for entry in self._entries.values():
            if len(out) >= max_messages:
                break
            if entry.lease_deadline is not None or entry.available_at > now:
                continue
            if entry.ack_id is not None:
                self._acks.pop(entry.ack_id, None)
            entry.attempts += 1
            entry.ack_id = f"{self._prefix}-{next(_ack_ids)}"
            entry.lease_deadline = now + deadline
            self._acks[entry.ack_id] = entry.message.message_id
            counted = entry.attempts if policy.max_delivery_attempts is not None else 0
            out.append(Delivery(entry.ack_id, entry.message, counted))
        return out, dead

    def ack(self, ack_id: str) -> None:
        entry = self._find(ack_id)
        if entry is not None:
            del self._entries[entry.message.message_id]
            self._acks.pop(ack_id, None)

    def extend(self, ack_id: str, seconds: float, now: float) -> None:
        entry = self._find(ack_id)
        if entry is not None and entry.lease_deadline is not None:
            entry.lease_deadline = now + seconds

    def nack(self, ack_id: str, policy: DeliveryPolicy, now: float) -> tuple[PubsubMessage, int] | None:
        """Release a lease; return (message, attempts) when it has to go to the dead-letter topic."""
        entry = self._find(ack_id)
        if entry is None or entry.lease_deadline is None:
            return None
        return self._release(entry, policy, now)

    def sweep(self, policy: DeliveryPolicy, now: float) -> list[tuple[PubsubMessage, int]]:
        """Drop messages past retention and release expired leases (an expired lease is a nack)."""
        dead: list[tuple[PubsubMessage, int]] = []
        for entry in list(self._entries.values()):
            if now - entry.published_at > policy.retention:
                self._drop(entry)
            elif entry.lease_deadline is not None and entry.lease_deadline <= now:
                released = self._release(entry, policy, entry.lease_deadline)
                if released is not None:
                    dead.append(released)
        return dead

    def next_due(self, now: float) -> float | None:
        """Seconds until a message becomes deliverable or a lease expires; None if nothing waits."""
        times = [e.lease_deadline if e.lease_deadline is not None else e.available_at for e in self._entries.values()]
        return max(min(times) - now, 0.0) if times else None

    def _find(self, ack_id: str) -> _Entry | None:
        entry = self._entries.get(self._acks.get(ack_id, ""))
        return entry if entry is not None and entry.ack_id == ack_id else None

    def _release(self, entry: _Entry, policy: DeliveryPolicy, at: float) -> tuple[PubsubMessage, int] | None:
        entry.lease_deadline = None
        if policy.max_delivery_attempts is not None and entry.attempts >= policy.max_delivery_attempts:
            self._drop(entry)
            return entry.message, entry.attempts
        entry.available_at = at + policy.backoff(entry.attempts)
        return None

    def _drop(self, entry: _Entry) -> None:
        del self._entries[entry.message.message_id]
        if entry.ack_id is not None:
            self._acks.pop(entry.ack_id, None)
