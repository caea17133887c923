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
from collections.abc import Callable
from dataclasses import dataclass

from shared.core.errors import PermanentError, RunawayWallet
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
    max_wallet_pages: int = 100_000  # MAX_PAGES_PER_WALLET: a walk past this is a runaway (100M rows)


MAX_EMPTY_PAGES = 20  # empty pages in a row with more to come: an API that never ends the walk
RECENT_CURSORS = 32  # cursor digests a continuation carries, so a cycle across parts is seen too


def cursor_digest(cursor: str) -> str:
    return hashlib.sha256(cursor.encode()).hexdigest()[:16]


class Guard:
    """The fetcher's guards against a walk that never ends (design rule 12: such a wallet is
    dead-lettered with the reason; the others go on)."""

    def __init__(self, task: WalletTask, budget: FetchBudget) -> None:
        self.task, self.budget = task, budget
        self.pages, self.empty = task.pages, task.empty_pages
        self.recent = list(task.recent)
        self._seen = set(task.recent)

    def page(self, rows: int, next_cursor: str | None) -> None:
        self.pages += 1
        self.empty = 0 if rows else self.empty + 1
        context = {"wallet": self.task.wallet, "run_id": self.task.run_id, "part": self.task.part}
        if self.pages > self.budget.max_wallet_pages:
            raise RunawayWallet(
                f"more than {self.budget.max_wallet_pages:,} pages for one wallet (MAX_PAGES_PER_WALLET): stopped",
                **context,
            )
        if next_cursor is not None and self.empty >= MAX_EMPTY_PAGES:
            raise RunawayWallet(f"{self.empty} empty pages in a row, and the API still says there is more", **context)
        if next_cursor is not None:
            digest = cursor_digest(next_cursor)
            if digest in self._seen:
                raise RunawayWallet(
                    f"the API gave a cursor it had given before, {self.pages} pages into the walk (a loop)", **context
                )
            self._seen.add(digest)
            self.recent = [*self.recent, digest][-RECENT_CURSORS:]


@dataclass
class FetchOutcome:
    file: FileReady
    continuation: WalletTask | None
    pages: int
    mismatched_user: int


def part_name(task: WalletTask, cursor_after: str | None, rows: int, final: bool) -> str:
    return _name(task.run_id, task.wallet, task.part, task.cursor, cursor_after, rows, final)


def announced_part_name(ready: FileReady) -> str:
    """The name `fetch` gave the part file that `ready` announces: every input of `part_name` travels in
    the message (its cursor_after is None exactly when the walk ended), so the loader can tell whether
    a FileReady points at the file the fetcher wrote for it, and at nothing else."""
    return _name(ready.run_id, ready.wallet, ready.part, ready.cursor_in, ready.cursor_after, ready.rows, ready.final)


def _name(
    run_id: str, wallet: str, part: int, cursor_in: str | None, cursor_after: str | None, rows: int, final: bool
) -> str:
    digest = hashlib.sha256(f"{cursor_in}|{cursor_after}|{rows}|{final}".encode()).hexdigest()[:16]
    return f"runs/{run_id}/{wallet}/part-{part:05d}-{digest}.jsonl"


def fetch(
    task: WalletTask,
    *,
    source: TradeSource,
    store: ObjectStore,
    publisher: Publisher,
    clock: Clock,
    budget: FetchBudget,
    cancelled: Callable[[], bool] = lambda: False,
) -> FetchOutcome:
    """`cancelled`: asked between pages; when it says yes, the part ends at the next page where a part
    may end (the run is stopping: the part is kept, the continuation resumes after it)."""
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
    guard = Guard(task, budget)
    with store.open_writer(tmp) as out:
        for page in source.pages(wallet, task.cursor, task.since, task.until):
            guard.page(len(page.rows), page.next_cursor)
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
            if page.resumable and (pages >= budget.max_pages or spent >= budget.seconds or cancelled()):
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
        carried = {"pages": guard.pages, "empty_pages": guard.empty, "recent": tuple(guard.recent)}
        continuation = task.model_copy(update={"part": task.part + 1, "cursor": cursor_after, **carried})
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
