"""The embedded stand-in for Pub/Sub: topics as in-memory queues with Pub/Sub's delivery rules.

At-least-once: a message is handed out, then settled with the delivery policy's verdict
(shared/delivery.py): acked (gone), dead-lettered with its reason, or nacked (redelivered after an
exponential back-off between min_backoff and max_backoff); after `max_attempts` deliveries it goes to
the dead-letter store with the last error as its reason. Messages live in memory: after a crash, the
warehouse's checkpoints are the truth and dispatch rebuilds the work, exactly as the cloud dispatcher
does after an expired lease.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import uuid
from dataclasses import dataclass, field

from shared.adapters.clock import SystemClock
from shared.core.messages import DeadLetter
from shared.delivery import Outcome, Received, Verdict, settle
from shared.ports.clock import Clock
from shared.ports.deadletters import DeadLetterSink
from shared.ports.publisher import Topic


@dataclass(order=True)
class Delivery:
    not_before: float
    seq: int
    topic: Topic = field(compare=False)
    data: bytes = field(compare=False)
    attributes: dict[str, str] = field(compare=False)
    message_id: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Bus:
    def __init__(
        self,
        dead_letters: DeadLetterSink,
        *,
        clock: Clock | None = None,
        max_attempts: int = 5,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.dead_letters = dead_letters
        self.clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._queues: dict[Topic, list[Delivery]] = {}
        self._outstanding: dict[Topic, int] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self.published: dict[Topic, int] = {}
        self.dead_lettered: list[DeadLetter] = []

    def publish(self, topic: Topic, data: bytes, attributes: dict[str, str]) -> str:
        message_id = uuid.uuid4().hex
        # Known work goes ahead of wallets not started yet, the largest first: a window whose size is
        # estimated (a split's child, or its continuation) by its estimated pages, then any wallet's
        # continuation — a chain of parts is sequential, so starting each next part at once keeps a big
        # wallet from becoming the run's tail.
        is_task = attributes.get("type") == "WalletTask"
        estimate = attributes.get("estimate", "") if is_task else ""
        continuation = is_task and attributes.get("part", "0") != "0"
        due = -float(estimate) if estimate.isdigit() else 0.0 if continuation else self.clock.monotonic()
        self._push(Delivery(due, next(self._seq), topic, data, dict(attributes), message_id))
        with self._cond:
            self.published[topic] = self.published.get(topic, 0) + 1
        return message_id

    def _push(self, delivery: Delivery) -> None:
        with self._cond:
            heapq.heappush(self._queues.setdefault(delivery.topic, []), delivery)
            self._cond.notify_all()

    def get(self, topic: Topic, timeout: float) -> Delivery | None:
        batch = self.get_batch(topic, 1, timeout)
        return batch[0] if batch else None

    def get_batch(self, topic: Topic, max_items: int, wait: float) -> list[Delivery]:
        """Up to max_items due messages: waits up to `wait` seconds for the first, then takes those due
        with it and returns, without waiting for more. A consumer that keeps up gets small batches at
        once; one that falls behind gets the backlog in one batch. (Waiting to fill a batch kept the
        embedded loader idle for up to `wait` after every batch while files queued: the run's tail.)"""
        deadline = self.clock.monotonic() + wait
        out: list[Delivery] = []
        with self._cond:
            while len(out) < max_items:
                queue = self._queues.setdefault(topic, [])
                now = self.clock.monotonic()
                if queue and queue[0].not_before <= now:
                    out.append(heapq.heappop(queue))
                    self._outstanding[topic] = self._outstanding.get(topic, 0) + 1
                    continue
                if out:
                    break
                remaining = deadline - now
                if remaining <= 0:
                    break
                next_due = queue[0].not_before - now if queue else remaining
                self._cond.wait(min(remaining, max(next_due, 0.005)))
        return out

    def settle(self, delivery: Delivery, verdict: Verdict) -> DeadLetter | None:
        """Apply the delivery policy's verdict (shared/delivery.py) as Pub/Sub would: ack, keep the
        dead letter then ack, or nack for a redelivery after a back-off — and after `max_attempts`
        deliveries, dead-letter it with the last error."""
        received = Received(delivery.topic, delivery.data, delivery.attributes, delivery.attempt)
        if verdict.outcome in (Outcome.RETRY, Outcome.HALT) and delivery.attempt >= self.max_attempts:
            verdict = Verdict(Outcome.DEAD_LETTER, verdict.error)
        letter = settle(verdict, received, self.dead_letters)
        self._done(delivery)
        if letter is not None:
            with self._cond:
                self.dead_lettered.append(letter)
        elif not verdict.acked:
            delay = min(self.max_backoff, self.min_backoff * 2 ** (delivery.attempt - 1))
            retry = Delivery(
                self.clock.monotonic() + delay,
                next(self._seq),
                delivery.topic,
                delivery.data,
                delivery.attributes,
                delivery.message_id,
                delivery.attempt + 1,
            )
            self._push(retry)
        return letter

    def _done(self, delivery: Delivery) -> None:
        with self._cond:
            self._outstanding[delivery.topic] -= 1
            self._cond.notify_all()

    def pending(self, topic: Topic) -> int:
        with self._cond:
            return len(self._queues.get(topic, ())) + self._outstanding.get(topic, 0)

    def idle(self) -> bool:
        with self._cond:
            return all(not q for q in self._queues.values()) and not any(self._outstanding.values())
