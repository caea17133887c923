"""The embedded stand-in for Pub/Sub: topics as in-memory queues with Pub/Sub's delivery rules.

At-least-once: a message is handed out, then acked (gone) or nacked (redelivered after an
exponential back-off between min_backoff and max_backoff); after `max_attempts` deliveries it goes
to the dead-letter queue with the last error as its reason. `dead_letter()` sends it there at once
(a permanent error). Messages live in memory: after a crash, the warehouse's checkpoints are the
truth and dispatch rebuilds the work, exactly as the cloud dispatcher does after an expired lease.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import uuid
from dataclasses import dataclass, field

from shared.clock import Clock, SystemClock
from shared.deadletters import DeadLetterQueue
from shared.errors import PipelineError
from shared.messages import DeadLetter


@dataclass(order=True)
class Delivery:
    not_before: float
    seq: int
    topic: str = field(compare=False)
    data: bytes = field(compare=False)
    attributes: dict[str, str] = field(compare=False)
    message_id: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Bus:
    def __init__(
        self,
        dead_letters: DeadLetterQueue,
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
        self._queues: dict[str, list[Delivery]] = {}
        self._outstanding: dict[str, int] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self.published: dict[str, int] = {}
        self.dead_lettered: list[DeadLetter] = []

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        message_id = uuid.uuid4().hex
        # A wallet's continuation goes ahead of wallets not started yet: a big wallet's chain of parts is
        # sequential, so starting each next part at once keeps it from becoming the run's tail.
        continuation = attributes.get("type") == "WalletTask" and attributes.get("part", "0") != "0"
        due = 0.0 if continuation else self.clock.monotonic()
        self._push(Delivery(due, next(self._seq), topic, data, dict(attributes), message_id))
        with self._cond:
            self.published[topic] = self.published.get(topic, 0) + 1
        return message_id

    def _push(self, delivery: Delivery) -> None:
        with self._cond:
            heapq.heappush(self._queues.setdefault(delivery.topic, []), delivery)
            self._cond.notify_all()

    def get(self, topic: str, timeout: float) -> Delivery | None:
        batch = self.get_batch(topic, 1, timeout)
        return batch[0] if batch else None

    def get_batch(self, topic: str, max_items: int, wait: float) -> list[Delivery]:
        """Up to max_items due messages; waits up to `wait` seconds for the first, then for more."""
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
                remaining = deadline - now
                if remaining <= 0:
                    break
                next_due = queue[0].not_before - now if queue else remaining
                self._cond.wait(min(remaining, max(next_due, 0.005)))
        return out

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery)

    def nack(self, delivery: Delivery, error: BaseException) -> None:
        self._settle(delivery)
        if delivery.attempt >= self.max_attempts:
            self.dead_letter(delivery, error, settle=False)
            return
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

    def dead_letter(self, delivery: Delivery, error: BaseException, *, settle: bool = True) -> DeadLetter:
        if settle:
            self._settle(delivery)
        letter = DeadLetter(
            topic=delivery.topic,
            data=delivery.data.decode("utf-8", errors="replace"),
            attributes=delivery.attributes,
            error_class=error.error_class if isinstance(error, PipelineError) else type(error).__name__,
            error=str(error)[:2000],
            wallet=delivery.attributes.get("wallet"),
            attempts=delivery.attempt,
        )
        self.dead_letters.put(letter)
        with self._cond:
            self.dead_lettered.append(letter)
        return letter

    def _settle(self, delivery: Delivery) -> None:
        with self._cond:
            self._outstanding[delivery.topic] -= 1
            self._cond.notify_all()

    def pending(self, topic: str) -> int:
        with self._cond:
            return len(self._queues.get(topic, ())) + self._outstanding.get(topic, 0)

    def idle(self) -> bool:
        with self._cond:
            return all(not q for q in self._queues.values()) and not any(self._outstanding.values())
