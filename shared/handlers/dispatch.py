"""dispatch(): one WalletTask per unchecked wallet, idempotent and bounded (design rule 11).

Cloud Scheduler calls it every 30 minutes, at least once: a wallet inside its lease (dispatched and
not finished) is not sent again, and one call sends at most `max_in_flight` minus what is in flight.
Unfinished wallets resume from the end of their committed chain of parts, in their own run.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
    lookups: int = 0  # lookup tasks published after the wallets (shared/handlers/lookups.py)


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
    until = now + timedelta(seconds=lease_seconds)
    token = uuid.uuid4().hex  # this call's claims: a concurrent dispatch cannot publish what this one took
    chunk: list[WalletTask] = []
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
        chunk.append(_task_for(cand, wallet, run_id, source, mode, warehouse))
        if len(chunk) >= CHUNK:
            result.published += claim_and_publish(chunk, warehouse, publisher, now, until, token)
            chunk = []
    if chunk:
        result.published += claim_and_publish(chunk, warehouse, publisher, now, until, token)
    log.info(
        "dispatched %d wallets (%d dead-lettered)",
        len(result.published),
        len(result.dead_lettered),
        extra={"run_id": run_id},
    )
    return result


def claim_and_publish(
    tasks: list[WalletTask], warehouse: Warehouse, publisher: Publisher, now: datetime, until: datetime, token: str
) -> list[WalletTask]:
    """Lease first, atomically, then publish only what this call won (design rule 11, whatever the
    concurrency: a Scheduler retry and a manual call at once publish each wallet once). If a publish
    fails, the leases not yet used are given back, so those wallets do not wait out a lease for nothing."""
    won = warehouse.claim([(t.wallet, t.run_id) for t in tasks], now, until, token)
    mine = [t for t in tasks if t.wallet in won]
    for n, task in enumerate(mine):
        try:
            publish_message(publisher, Topic.WALLETS, task)
        except BaseException:
            warehouse.unclaim(token, [t.wallet for t in mine[n:]])
            raise
    return mine


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
