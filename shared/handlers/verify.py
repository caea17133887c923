"""verify(): prove every complete checkpoint — against the warehouse and, where the API counts cheaply,
against the API — and requeue the wallets that do not reconcile, in a new run.

For each wallet whose checkpoint is complete, in wallet order and a chunk at a time (memory is one
chunk and the addresses of the wallets requeued, whatever the number of wallets; mismatches past the
first MAX_LISTED are counted, not listed):

    not_merged      no final part of the checkpoint's run is loaded: no loader completed that run
                    (design rule 3), the checkpoint was written by someone else
    rows_missing    `trades` holds fewer rows than the checkpoint's trades_loaded (the loader's COUNT(*)
                    of the wallet's rows when it committed): rows were lost after the load
    rows_extra      more rows than trades_loaded
    api_has_more    the API counts more trades than `trades` holds (Dome's pagination.total): the wallet
                    traded since it completed, or rows are missing that the checkpoint never counted
    api_has_fewer   the API counts fewer
    api_error       the API would not count this wallet (its error, after the client's retries)
    ok              none of these

A requeue publishes a fresh WalletTask (a new run, no cursor) for each wallet a re-fetch repairs, only
after claiming its lease atomically (`claim_and_publish`, as dispatch does): the re-walk MERGEs into the
same rows (nothing duplicated, nothing removed), and the loader moves the checkpoint to the new run and
counts trades_loaded again when it completes. Nothing here writes trades, checkpoints or
checkpoint_parts — the loader's tables (design rule 9); requeue writes leases only.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.core.errors import PermanentError, TransientError
from shared.core.messages import WalletTask
from shared.handlers.dispatch import claim_and_publish
from shared.ports.clock import Clock
from shared.ports.publisher import Publisher
from shared.ports.source import TradeCounter
from shared.ports.warehouse import Stored, Warehouse

log = logging.getLogger(__name__)
CHUNK = 5000  # complete wallets per round of warehouse queries (the SQL base caps a parameter at 5,000)
API_BATCH = 100  # wallets counted by the API between two looks at the time budget
API_WORKERS = 8  # counts in flight at once: the client's limiter paces them, these only hide latency
MAX_LISTED = 10_000  # mismatches kept for the report; more are counted (by verdict), not listed


class Verdict(StrEnum):
    OK = "ok"
    NOT_MERGED = "not_merged"
    ROWS_MISSING = "rows_missing"
    ROWS_EXTRA = "rows_extra"
    API_HAS_MORE = "api_has_more"
    API_HAS_FEWER = "api_has_fewer"
    API_ERROR = "api_error"


# What a re-fetch repairs: it merges every row the API serves and counts them again. It never removes a
# row (MERGE inserts only), so a warehouse holding more than the API stays so; and an API that would not
# count a wallet is asked again by the next verification, not re-walked.
REPAIRABLE = frozenset({Verdict.NOT_MERGED, Verdict.ROWS_MISSING, Verdict.ROWS_EXTRA, Verdict.API_HAS_MORE})


@dataclass(frozen=True)
class WalletCheck:
    stored: Stored
    api_total: int | None = None  # None: not asked (api_note says why) or it failed
    api_note: str | None = None

    @property
    def wallet(self) -> str:
        return self.stored.wallet

    @property
    def verdict(self) -> Verdict:
        s = self.stored
        if s.final_parts == 0:
            return Verdict.NOT_MERGED
        if s.rows != s.trades_loaded:
            return Verdict.ROWS_MISSING if s.rows < s.trades_loaded else Verdict.ROWS_EXTRA
        if self.api_total is not None and self.api_total != s.rows:
            return Verdict.API_HAS_MORE if self.api_total > s.rows else Verdict.API_HAS_FEWER
        if self.api_total is None and self.api_note and self.api_note.startswith("error"):
            return Verdict.API_ERROR
        return Verdict.OK

    def as_json(self) -> dict[str, Any]:
        s = self.stored
        return {
            "wallet": s.wallet,
            "run_id": s.run_id,
            "source": s.source,
            "trades_loaded": s.trades_loaded,
            "warehouse_rows": s.rows,
            "api_total": self.api_total,  # null: see api_note ("n/a: ..." or "error: ...")
            "api_note": self.api_note,
            "final_parts": s.final_parts,
            "verdict": str(self.verdict),
        }


@dataclass(frozen=True)
class Requeue:
    """Where and how the wallets a re-fetch repairs go: fresh tasks of `run_id` on `publisher`."""

    publisher: Publisher
    run_id: str
    lease_seconds: int


@dataclass
class VerifyReport:
    api: str  # what the API counts were compared with: the source's name, or "n/a: why"
    checked: int = 0
    by_verdict: Counter[str] = field(default_factory=Counter)
    mismatches: list[WalletCheck] = field(default_factory=list)  # the first MAX_LISTED
    run_id: str | None = None  # the requeue's run
    requeued: list[str] = field(default_factory=list)
    not_requeued: dict[str, str] = field(default_factory=dict)  # wallet -> why not: the first MAX_LISTED
    left_alone: int = 0  # mismatches not requeued, all of them
    next_after: str | None = None  # where the next call resumes; None: every complete wallet was checked

    def leave(self, wallet: str, why: str) -> None:
        """A mismatch a requeue leaves as it is, and why."""
        self.left_alone += 1
        if len(self.not_requeued) < MAX_LISTED:
            self.not_requeued[wallet] = why

    @property
    def mismatched(self) -> int:
        return self.checked - self.by_verdict[Verdict.OK]

    @property
    def verified(self) -> bool:
        """Every wallet checked reconciled, and none is left to check."""
        return self.mismatched == 0 and self.next_after is None

    def as_json(self, listed: int = MAX_LISTED) -> dict[str, Any]:
        """`listed`: how many mismatches (and requeued wallets) to list; every one is counted."""
        return {
            "checked": self.checked,
            "ok": self.by_verdict[Verdict.OK],
            "mismatched": self.mismatched,
            "by_verdict": {str(k): v for k, v in sorted(self.by_verdict.items()) if k != Verdict.OK},
            "api": self.api,
            "complete": self.next_after is None,
            "next_after": self.next_after,
            "mismatches": [c.as_json() for c in self.mismatches[:listed]],
            "listed": min(listed, len(self.mismatches)),
            "run_id": self.run_id,
            "requeued_count": len(self.requeued),
            "requeued": self.requeued[:listed],
            "not_requeued_count": self.left_alone,
            "not_requeued": [{"wallet": w, "why": why} for w, why in list(self.not_requeued.items())[:listed]],
        }


def verify(
    *,
    warehouse: Warehouse,
    counter: TradeCounter | None,
    source: str,
    clock: Clock,
    after: str | None = None,
    wallets: list[str] | None = None,
    max_wallets: int | None = None,
    budget_seconds: float | None = None,
    requeue: Requeue | None = None,
    unasked: str | None = None,
    chunk: int = CHUNK,
    on_chunk: Callable[[VerifyReport], None] | None = None,
) -> VerifyReport:
    """Check the complete wallets after `after` (or only `wallets`), at most `max_wallets` of them and
    for about `budget_seconds`; `counter` None: no API counts ("n/a", `unasked` saying why). `source`:
    what this pipeline pages — a wallet loaded from another source is neither counted nor requeued."""
    if counter is not None and counter.name != source:
        raise ValueError(f"the counter asks {counter.name}, the pipeline pages {source}")
    report = VerifyReport(api=counter.name if counter else unasked or _no_api(source))
    deadline = None if budget_seconds is None else clock.monotonic() + budget_seconds
    token = uuid.uuid4().hex
    if requeue is not None:
        report.run_id = requeue.run_id
    with ThreadPoolExecutor(API_WORKERS, thread_name_prefix="verify-count") as pool:
        for stored in _chunks(warehouse, after, wallets, chunk):
            if max_wallets is not None:
                stored = stored[: max_wallets - report.checked]
            checks = _counted(stored, counter, report.api, pool, clock, deadline)
            for check in checks:
                report.checked += 1
                report.by_verdict[check.verdict] += 1
                if check.verdict is not Verdict.OK and len(report.mismatches) < MAX_LISTED:
                    report.mismatches.append(check)
            if requeue is not None:
                wrong = [c for c in checks if c.verdict is not Verdict.OK]
                _requeue(wrong, warehouse, clock, source, requeue, token, report)
            if on_chunk is not None:
                on_chunk(report)
            out_of_time = deadline is not None and clock.monotonic() >= deadline
            if len(checks) < len(stored) or out_of_time or report.checked == max_wallets:
                report.next_after = checks[-1].wallet if checks else after
                break
    log.info(
        "verified %d complete wallets: %d mismatched %s%s",
        report.checked,
        report.mismatched,
        dict(report.by_verdict),
        f", {len(report.requeued)} requeued in run {report.run_id}" if requeue else "",
    )
    return report


def requeue_run_id(now: datetime) -> str:
    """A run of its own, never one a wallet already has: its parts get names of their own, and the
    loader moves the checkpoint to it (a complete checkpoint of the same run would not move)."""
    return f"verify-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _no_api(source: str) -> str:
    return "n/a: the Data API gives no total" if source == "polymarket" else "n/a: not asked"


def _chunks(warehouse: Warehouse, after: str | None, wallets: list[str] | None, size: int) -> Iterator[list[Stored]]:
    if wallets is not None:  # the named wallets only, a chunk of names at a time
        named = sorted({w for w in wallets if after is None or w > after})
        for i in range(0, len(named), size):
            part = warehouse.complete_wallets(None, size, named[i : i + size])
            if part:
                yield part
        return
    while chunk := warehouse.complete_wallets(after, size):
        yield chunk
        after = chunk[-1].wallet


def _counted(
    stored: list[Stored],
    counter: TradeCounter | None,
    no_api: str,
    pool: ThreadPoolExecutor,
    clock: Clock,
    deadline: float | None,
) -> list[WalletCheck]:
    """The chunk's checks with the API's counts, a batch at a time while the budget lasts: what the
    budget cut off is left out (the report resumes before it). A systemic error (the key, the breaker)
    stops the verification; one wallet's error is its verdict."""
    if counter is None:
        return [WalletCheck(s, None, no_api) for s in stored]
    out: list[WalletCheck] = []
    for i in range(0, len(stored), API_BATCH):
        if i and deadline is not None and clock.monotonic() >= deadline:
            break
        batch = stored[i : i + API_BATCH]
        out += pool.map(lambda s: _count(counter, s), batch)
    return out


def _count(counter: TradeCounter, s: Stored) -> WalletCheck:
    if s.source is not None and s.source != counter.name:
        return WalletCheck(s, None, f"n/a: loaded from {s.source}")
    if s.final_parts == 0 or s.rows != s.trades_loaded:
        return WalletCheck(s, None, "not asked: the warehouse disagrees with itself already")
    try:
        return WalletCheck(s, counter.count(s.wallet))
    except (TransientError, PermanentError) as exc:
        return WalletCheck(s, None, f"error: {exc}")


def _requeue(
    mismatched: list[WalletCheck],
    warehouse: Warehouse,
    clock: Clock,
    source: str,
    requeue: Requeue,
    token: str,
    report: VerifyReport,
) -> None:
    tasks = []
    for check in mismatched:
        if check.verdict not in REPAIRABLE:
            report.leave(check.wallet, f"{check.verdict}: a re-fetch does not repair it")
        elif check.stored.source not in (None, source):
            report.leave(check.wallet, f"loaded from {check.stored.source}; this pipeline pages {source}")
        else:
            tasks.append(WalletTask(run_id=requeue.run_id, wallet=check.wallet, source=source))
    if not tasks:
        return
    now = clock.now()
    won = claim_and_publish(
        tasks, warehouse, requeue.publisher, now, now + timedelta(seconds=requeue.lease_seconds), token
    )
    report.requeued += [t.wallet for t in won]
    for task in {t.wallet for t in tasks} - {t.wallet for t in won}:
        report.leave(task, "in flight (leased by a run in progress): verify again once it is done")
