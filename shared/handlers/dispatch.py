"""dispatch(): one WalletTask per unchecked wallet, idempotent and bounded (design rule 11).

Cloud Scheduler calls it every 30 minutes, at least once: a wallet inside its lease (dispatched and
not finished) is not sent again, and one call sends at most `max_in_flight` minus what is in flight.
Unfinished wallets resume from the end of their committed chain of parts, in their own run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from shared.core.chain import chain_state
from shared.core.errors import InvalidWallet
from shared.core.messages import DeadLetter, WalletTask
from shared.core.wallets import normalize_wallet
from shared.ports.clock import Clock
from shared.ports.deadletters import DeadLetterSink
from shared.ports.publisher import Publisher, Topic, publish_message
from shared.ports.warehouse import Candidate, Warehouse

log = logging.getLogger(__name__)
CHUNK = 500


@dataclass
class DispatchResult:
    published: list[WalletTask] = field(default_factory=list)
    dead_lettered: list[DeadLetter] = field(default_factory=list)
    in_flight_before: int = 0
    # Wallets loaded from another source: not dispatched (their keys would not merge with the old rows).
    source_conflicts: list[tuple[str, str]] = field(default_factory=list)


def dispatch(
    *,
    warehouse: Warehouse,
    publisher: Publisher,
    dead_letters: DeadLetterSink,
    clock: Clock,
    run_id: str,
    source: str,
    mode: str = "backfill",
    max_in_flight: int,
    lease_seconds: int,
) -> DispatchResult:
    if mode not in ("backfill", "incremental"):
        raise ValueError(f"mode must be 'backfill' or 'incremental', not {mode!r}")
    now = clock.now()
    result = DispatchResult(in_flight_before=warehouse.in_flight(now))
    result.source_conflicts = warehouse.source_conflicts(source)
    if result.source_conflicts:
        log.warning(
            "refusing to switch %d wallet(s) to source %s (first: %s loaded from %s); they are not dispatched",
            len(result.source_conflicts),
            source,
            *result.source_conflicts[0],
            extra={"run_id": run_id},
        )
    room = max(0, max_in_flight - result.in_flight_before)
    if room == 0:
        return result
    leased: list[tuple[str, str]] = []
    for cand in warehouse.candidates(now, mode, room, source=source):
        try:
            wallet = normalize_wallet(cand.wallet)
        except InvalidWallet as exc:
            # Parked by its pending letter (candidates leave it out) until an operator replays it.
            task = WalletTask(run_id=run_id, wallet=cand.wallet[:200] or "?", source=source)
            letter = DeadLetter.of(Topic.WALLETS, task.encode(), exc, attributes=task.attributes(), wallet=cand.wallet)
            dead_letters.put(letter)
            result.dead_lettered.append(letter)
            continue
        task = _task_for(cand, wallet, run_id, source, mode, warehouse)
        publish_message(publisher, Topic.WALLETS, task)
        result.published.append(task)
        leased.append((wallet, task.run_id))
        if len(leased) >= CHUNK:
            warehouse.lease(leased, now, now + timedelta(seconds=lease_seconds), reason="in_flight")
            leased = []
    if leased:
        warehouse.lease(leased, now, now + timedelta(seconds=lease_seconds), reason="in_flight")
    log.info(
        "dispatched %d wallets (%d dead-lettered)",
        len(result.published),
        len(result.dead_lettered),
        extra={"run_id": run_id},
    )
    return result


def _task_for(cand: Candidate, wallet: str, run_id: str, source: str, mode: str, warehouse: Warehouse) -> WalletTask:
    if mode == "incremental":
        # Re-walk from the newest trade loaded (inclusive): the boundary second is merged, not duplicated.
        return WalletTask(run_id=run_id, wallet=wallet, since=cand.newest_trade_epoch, source=source)
    if cand.run_id and cand.status == "in_progress":
        state = chain_state(warehouse.segments([(wallet, cand.run_id)]))
        return WalletTask(
            run_id=cand.run_id, wallet=wallet, part=state.resume_part, cursor=state.resume_cursor, source=source
        )
    return WalletTask(run_id=run_id, wallet=wallet, source=source)
