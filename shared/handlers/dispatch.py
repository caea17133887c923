"""dispatch(): work for every wallet that needs it, idempotent and bounded (design rule 11).

Cloud Scheduler calls it every 30 minutes, at least once: a wallet inside its lease (dispatched and
not finished) is not sent again, and one call sends at most `max_in_flight` minus what is in flight.
New wallets get their whole walk; unfinished ones resume every incomplete chain of their walk from the
end of its committed parts, in their own run; with `sync_before`, complete wallets last walked before
it are synced from their watermark (docs/design.md, "Sync").
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.core.chain import walk_state
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


MODES = ("scheduled", "backfill", "sync")


def sync_boundary(now: datetime, hour_utc: int) -> datetime:
    """The latest daily sync time at or before `now`: wallets last walked before it are due."""
    today = now.astimezone(UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def sync_before_for(mode: str, now: datetime, *, daily: bool, hour_utc: int) -> datetime | None:
    """What a dispatch in `mode` syncs: `backfill` nothing (new and unfinished wallets only), `sync`
    every complete wallet not walked since now, `scheduled` (what the Scheduler sends every 30 minutes)
    the complete wallets not walked since the day's sync hour — so one job backfills all day and syncs
    once a day, bounded by MAX_IN_FLIGHT like everything else."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "sync":
        return now
    if mode == "scheduled" and daily:
        return sync_boundary(now, hour_utc)
    return None


def dispatch(
    *,
    warehouse: Warehouse,
    publisher: Publisher,
    dead_letters: DeadLetterSink,
    clock: Clock,
    run_id: str,
    source: str,
    max_in_flight: int,
    lease_seconds: int,
    sync_before: datetime | None = None,
    lookback_seconds: int = 86_400,
) -> DispatchResult:
    """`sync_before`: also sync the complete wallets whose last walk finished before it, from their
    newest trade minus `lookback_seconds` (None: backfill only — new and unfinished wallets)."""
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
    for cand in warehouse.candidates(now, room, source=source, sync_before=sync_before):
        try:
            wallet = normalize_wallet(cand.wallet)
        except InvalidWallet as exc:
            # Parked by its pending letter (candidates leave it out) until an operator replays it.
            task = WalletTask(run_id=run_id, wallet=cand.wallet[:200] or "?", source=source)
            letter = DeadLetter.of(Topic.WALLETS, task.encode(), exc, attributes=task.attributes(), wallet=cand.wallet)
            dead_letters.put(letter)
            result.dead_lettered.append(letter)
            continue
        chunk += _tasks_for(cand, wallet, run_id, source, lookback_seconds, warehouse)
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
    won = warehouse.claim(list(dict.fromkeys((t.wallet, t.run_id) for t in tasks)), now, until, token)
    mine = [t for t in tasks if t.wallet in won]
    for n, task in enumerate(mine):
        try:
            publish_message(publisher, Topic.WALLETS, task)
        except BaseException:
            warehouse.unclaim(token, list(dict.fromkeys(t.wallet for t in mine[n:])))
            raise
    return mine


def _tasks_for(
    cand: Candidate, wallet: str, run_id: str, source: str, lookback: int, warehouse: Warehouse
) -> list[WalletTask]:
    """A new wallet: its whole walk. A complete one (a sync): from its newest trade minus the lookback —
    what is already stored merges into itself. An unfinished one: every chain of its walk that is not
    complete, each from where it stands, in the walk's own run and bounds."""
    if cand.run_id and cand.status == "in_progress":
        state = walk_state(warehouse.segments([(wallet, cand.run_id)]))
        return [
            WalletTask(
                run_id=cand.run_id,
                wallet=wallet,
                part=r.part,
                cursor=r.cursor,
                since=state.since,
                until=state.until,
                window=None if r.window == (state.since, state.until) else r.window,
                source=source,
            )
            for r in state.pending
        ]
    if cand.status == "complete":
        newest = cand.newest_trade_epoch
        since = None if newest is None else max(0, newest - lookback)
        return [WalletTask(run_id=run_id, wallet=wallet, since=since, source=source)]
    return [WalletTask(run_id=run_id, wallet=wallet, source=source)]
