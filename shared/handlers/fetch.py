"""fetch(task): page one wallet from its cursor into one part file, within a budget (design rules 4–7).

Rows stream from the API to the part file page by page (memory is one page). The part is written under
a temporary name and renamed to a name derived from what it covers (run, wallet, part, cursor range,
row count), so a file's content never changes once a FileReady points at it, and a retried task that
covers the same stretch lands on the same name. Only then are FileReady and the continuation published.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

from shared.core.errors import PermanentError
from shared.core.messages import FileReady, WalletTask
from shared.core.trades import part_line
from shared.core.wallets import normalize_wallet
from shared.ports.clock import Clock
from shared.ports.objectstore import ObjectStore
from shared.ports.publisher import Publisher, Topic, publish_message
from shared.ports.source import TradeSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchBudget:
    """When a part ends: after `seconds` or `max_pages` (FETCH_BUDGET_SECONDS, FETCH_MAX_PAGES), well
    inside the push's ack deadline (infra/resources.yaml)."""

    seconds: float
    max_pages: int


@dataclass
class FetchOutcome:
    file: FileReady
    continuation: WalletTask | None
    pages: int
    mismatched_user: int


def part_name(task: WalletTask, cursor_after: str | None, rows: int, final: bool) -> str:
    digest = hashlib.sha256(f"{task.cursor}|{cursor_after}|{rows}|{final}".encode()).hexdigest()[:16]
    return f"runs/{task.run_id}/{task.wallet}/part-{task.part:05d}-{digest}.jsonl"


def fetch(
    task: WalletTask,
    *,
    source: TradeSource,
    store: ObjectStore,
    publisher: Publisher,
    clock: Clock,
    budget: FetchBudget,
) -> FetchOutcome:
    wallet = normalize_wallet(task.wallet)
    if wallet != task.wallet:
        task = task.model_copy(update={"wallet": wallet})
    if task.source != source.name:
        raise PermanentError(
            f"task is for source {task.source!r} but this fetcher pages {source.name!r}",
            wallet=wallet,
            run_id=task.run_id,
            part=task.part,
        )
    started = clock.monotonic()
    rows = pages = mismatched = 0
    cursor_after, final = task.cursor, False
    tmp = f"tmp/{task.run_id}/{wallet}/part-{task.part:05d}-{uuid.uuid4().hex}.jsonl"
    with store.open_writer(tmp) as out:
        for page in source.pages(wallet, task.cursor, task.since, task.until):
            for row in page.rows:
                row["run_id"] = task.run_id
                out.write(part_line(row))
            rows += len(page.rows)
            pages += 1
            mismatched += page.mismatched_user
            cursor_after = page.next_cursor
            if page.next_cursor is None:
                final = True
                break
            spent = clock.monotonic() - started
            if page.resumable and (pages >= budget.max_pages or spent >= budget.seconds):
                break
    name = part_name(task, cursor_after, rows, final)
    store.rename(tmp, name)
    ready = FileReady(
        run_id=task.run_id,
        wallet=wallet,
        part=task.part,
        uri=store.uri(name),
        rows=rows,
        final=final,
        cursor_in=task.cursor,
        cursor_after=None if final else cursor_after,
        source=task.source,
    )
    publish_message(publisher, Topic.FILES, ready)
    continuation = None
    if not final:
        continuation = task.model_copy(update={"part": task.part + 1, "cursor": cursor_after})
        publish_message(publisher, Topic.WALLETS, continuation)
    log.info(
        "fetched part %d: %d rows in %d pages%s",
        task.part,
        rows,
        pages,
        " (final)" if final else "",
        extra={
            "wallet": wallet,
            "run_id": task.run_id,
            "part": task.part,
            "seconds": round(clock.monotonic() - started, 3),
        },
    )
    return FetchOutcome(ready, continuation, pages, mismatched)
