"""replay_dead_letters(): put dead letters back on their topic once their cause is fixed, and
collect_dead_letters(): move letters waiting on the dead-letter topics into the store.

A letter is marked replayed only after its republish is confirmed, so a crash in between replays it
twice at worst — harmless, since every later step is idempotent. A letter in the inbox is acked only
after the store holds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from shared.core.messages import DeadLetter
from shared.ports.clock import Clock
from shared.ports.deadletters import DeadLetterInbox, DeadLetterStore
from shared.ports.publisher import Publisher, Topic
from shared.ports.warehouse import Warehouse

log = logging.getLogger(__name__)
_OUR_ATTRIBUTES = {"error_class", "error", "source_topic"}


@dataclass
class ReplayResult:
    replayed: list[DeadLetter] = field(default_factory=list)
    matched: int = 0
    dry_run: bool = False


def collect_dead_letters(inbox: DeadLetterInbox, store: DeadLetterStore, max_letters: int = 10_000) -> int:
    """Every letter waiting in the inbox, into the store; returns how many."""
    moved = 0
    while moved < max_letters:
        held = inbox.pull(min(1000, max_letters - moved))
        if not held:
            break
        for item in held:
            store.put(item.letter)
        inbox.ack([item.handle for item in held])
        moved += len(held)
    if moved:
        log.info("collected %d dead letters from the dead-letter topics", moved)
    return moved


def replay_dead_letters(
    *,
    dead_letters: DeadLetterStore,
    publisher: Publisher,
    warehouse: Warehouse | None,
    clock: Clock,
    lease_seconds: int,
    error_class: str | None = None,
    wallet: str | None = None,
    max_letters: int = 1000,
    dry_run: bool = False,
) -> ReplayResult:
    result = ReplayResult(dry_run=dry_run)
    letters = dead_letters.pending(max_letters, error_class=error_class, wallet=wallet.lower() if wallet else None)
    result.matched = len(letters)
    if dry_run:
        result.replayed = letters
        return result
    for letter in letters:
        attributes = {k: v for k, v in letter.attributes.items() if k not in _OUR_ATTRIBUTES}
        publisher.publish(Topic(letter.topic), letter.data.encode(), attributes)
        if warehouse is not None and letter.topic == Topic.WALLETS and letter.wallet:
            now = clock.now()
            run_id = attributes.get("run_id", "replay")
            warehouse.lease([(letter.wallet, run_id)], now, now + timedelta(seconds=lease_seconds), "in_flight")
        dead_letters.mark_replayed([letter])
        result.replayed.append(letter)
    log.info("replayed %d of %d dead letters", len(result.replayed), result.matched)
    return result
