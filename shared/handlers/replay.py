"""replay_dead_letters(): put dead letters back on their topic, once their cause is fixed.

A letter is acknowledged (removed) only after its republish is confirmed, so a crash in between
replays it twice at worst — harmless, since every later step is idempotent. Letters that do not
match the filter are released untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from shared.clock import Clock
from shared.deadletters import DeadLetterQueue
from shared.messages import DeadLetter
from shared.publisher import WALLETS, Publisher
from shared.warehouse import Warehouse

log = logging.getLogger(__name__)
_OUR_ATTRIBUTES = {"error_class", "error", "source_topic"}


@dataclass
class ReplayResult:
    replayed: list[DeadLetter] = field(default_factory=list)
    matched: int = 0
    dry_run: bool = False


def replay_dead_letters(
    *,
    dead_letters: DeadLetterQueue,
    publisher: Publisher,
    warehouse: Warehouse | None,
    clock: Clock,
    error_class: str | None = None,
    wallet: str | None = None,
    max_letters: int = 1000,
    dry_run: bool = False,
    lease_seconds: int = 6 * 3600,
) -> ReplayResult:
    result = ReplayResult(dry_run=dry_run)
    held = dead_letters.pull(max_letters)
    release = getattr(dead_letters, "release", None)
    skipped: list[str] = []
    for item in held:
        letter = item.letter
        if (error_class and letter.error_class != error_class) or (wallet and letter.wallet != wallet.lower()):
            skipped.append(item.handle)
            continue
        result.matched += 1
        if dry_run:
            skipped.append(item.handle)
            result.replayed.append(letter)
            continue
        attributes = {
            k: v
            for k, v in letter.attributes.items()
            if k not in _OUR_ATTRIBUTES and not k.startswith("CloudPubSubDeadLetterSource")
        }
        publisher.publish(letter.topic, letter.data.encode(), attributes)
        if warehouse is not None and letter.topic == WALLETS and letter.wallet:
            now = clock.now()
            run_id = attributes.get("run_id", "replay")
            warehouse.lease([(letter.wallet, run_id)], now, now + timedelta(seconds=lease_seconds), "in_flight")
        dead_letters.ack([item.handle])
        result.replayed.append(letter)
    if skipped and release is not None:
        release(skipped)
    log.info("replayed %d of %d dead letters%s", len(result.replayed), len(held), " (dry run)" if dry_run else "")
    return result
