"""fetch(task): page one wallet from its cursor into one part file, within a budget (design rules 4–7).

Rows stream from the API to the part file page by page (memory is one page). The part is written under
a temporary name and renamed to a name derived from what it covers (run, wallet, part, cursor range,
row count), so a file's content never changes once a FileReady points at it, and a retried task that
covers the same stretch lands on the same name. Only then are FileReady and the continuation published.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO

from shared.core.errors import PermanentError, RunawayWallet
from shared.core.messages import FileReady, WalletTask, Window
from shared.core.trades import part_line
from shared.core.wallets import normalize_wallet
from shared.core.windows import Split, SplitPolicy, Walked, plan_split
from shared.ports.clock import Clock
from shared.ports.objectstore import ObjectStore
from shared.ports.publisher import Publisher, Topic, publish_message
from shared.ports.source import Page, TradeSource, may_end_after

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchBudget:
    """When a part ends: after `seconds` or `max_pages` (FETCH_BUDGET_SECONDS, FETCH_MAX_PAGES), well
    inside the push's ack deadline (infra/resources.yaml)."""

    seconds: float
    max_pages: int
    max_wallet_pages: int = 100_000  # MAX_PAGES_PER_WALLET: a walk past this is a runaway (100M rows)
    split: SplitPolicy = field(default_factory=lambda: SplitPolicy(enabled=False))  # when a chain splits


WRITE_ROWS = 100  # rows per write: few calls, and never a whole page's text at once (memory per worker)
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


class _Walk:
    """What a chain has read, for the split decision (carried across its parts in the task); trusted
    only while pages come newest first and inside the window (an API that ignores the bounds or the
    order is walked unsplit)."""

    def __init__(self, task: WalletTask, policy: SplitPolicy) -> None:
        self.task, self.policy = task, policy
        self.newest: int | None = task.newest
        self.oldest: int | None = None
        self.rows, self.pages = task.walked_rows, task.pages
        self.trusted = task.splittable

    def carried(self) -> dict[str, object]:
        return {"newest": self.newest, "walked_rows": self.rows, "splittable": self.trusted}

    def plan(self, page: Page) -> Split | None:
        lo, hi = self.task.bounds
        if page.rows:
            # Canonical timestamps sort as time does (shared/core/trades.py: iso_timestamp), so the order
            # is checked on the text; only the page's first and last are read as numbers.
            stamps = [r["timestamp"] for r in page.rows]
            seconds = [_seconds(page.rows[0]), _seconds(page.rows[-1])]
            ordered = all(a >= b for a, b in itertools.pairwise(stamps))
            inside = (lo is None or seconds[-1] >= lo) and (hi is None or seconds[0] <= hi)
            follows = self.oldest is None or seconds[0] <= self.oldest
            if not (ordered and inside and follows):
                if self.trusted:
                    log.warning(
                        "pages not newest first inside the window %s: this chain is not split",
                        self.task.bounds,
                        extra={"wallet": self.task.wallet, "run_id": self.task.run_id},
                    )
                self.trusted = False
            self.newest = seconds[0] if self.newest is None else self.newest
            self.oldest = seconds[-1]
        self.rows += len(page.rows)
        self.pages += 1
        if not self.trusted or self.newest is None or self.oldest is None:
            return None
        walked = Walked(self.task.bounds, self.newest, self.oldest, self.rows, self.pages, page.total)
        return plan_split(self.policy, walked)


def _child(task: WalletTask, window: Window, estimate: int | None) -> WalletTask:
    return WalletTask(
        run_id=task.run_id,
        wallet=task.wallet,
        since=task.since,
        until=task.until,
        window=window,
        estimate=estimate,
        source=task.source,
    )


@dataclass
class FetchOutcome:
    file: FileReady
    continuation: WalletTask | None
    pages: int
    mismatched_user: int


def announced_part_name(ready: FileReady) -> str:
    """The name `fetch` gives the part file that `ready` announces: every input travels in the message
    (its cursor_after is None exactly when the chain ended), so the loader can tell whether a FileReady
    points at the file the fetcher wrote for it, and at nothing else. The window and the split are in
    the name: two chains of one wallet never share a file."""
    what = {k: v for k, v in ready.model_dump(exclude_none=True).items() if k not in ("uri", "v", "source")}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    lo, hi = ready.bounds
    window = "" if ready.window is None else f"w{_edge(lo)}-{_edge(hi)}/"
    return f"runs/{ready.run_id}/{ready.wallet}/{window}part-{ready.part:05d}-{digest}.jsonl"


def _edge(bound: int | None) -> str:
    return "x" if bound is None else str(bound)


def _seconds(row: dict[str, object]) -> int:
    return int(datetime.fromisoformat(str(row["timestamp"]).replace("Z", "+00:00")).timestamp())


def _write(out: IO[str], rows: list[dict[str, object]], run_id: str) -> None:
    for i in range(0, len(rows), WRITE_ROWS):
        chunk = rows[i : i + WRITE_ROWS]
        for row in chunk:
            row["run_id"] = run_id
        out.write("".join(map(part_line, chunk)))


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
    may end (the run is stopping: the part is kept, the continuation resumes after it). A chain's first
    part may hand the rest of its window to children (`budget.split`, shared/core/windows.py)."""
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
    cursor_after, final, cut = task.cursor, False, None
    tmp = f"tmp/{task.run_id}/{wallet}/part-{task.part:05d}-{uuid.uuid4().hex}.jsonl"
    guard = Guard(task, budget)
    walk = _Walk(task, budget.split) if budget.split.enabled else None
    ending: Page | None = None  # the page after which the part ends if the next does not go on with its transaction
    with store.open_writer(tmp) as out:
        for page in source.pages(wallet, task.cursor, *task.bounds):
            if ending is not None:
                if may_end_after(ending, page):
                    break  # read only to know that: not written, the continuation reads it again
                ending = None
            guard.page(len(page.rows), page.next_cursor)
            cut = walk.plan(page) if walk is not None and page.next_cursor is not None else None
            kept = page.rows if cut is None else [r for r in page.rows if _seconds(r) > cut.at]
            _write(out, kept, task.run_id)
            rows += len(kept)
            pages += 1
            mismatched += page.mismatched_user
            cursor_after = page.next_cursor
            if page.next_cursor is None or cut is not None:
                final = True
                break
            spent = clock.monotonic() - started
            if pages >= budget.max_pages or spent >= budget.seconds or cancelled():
                if page.resumable:
                    break
                if page.resumable is None:
                    ending = replace(page, rows=[])  # its flags, not its rows: the next page says
            del page, kept  # one page in memory: not held while the next one is read
    ready = FileReady(
        run_id=task.run_id,
        wallet=wallet,
        part=task.part,
        uri="-",
        rows=rows,
        final=final,
        cursor_in=task.cursor,
        cursor_after=None if final else cursor_after,
        since=task.since,
        until=task.until,
        window=task.window,
        split_at=cut.at if cut else None,
        children=cut.children if cut else (),
        source=task.source,
    )
    name = announced_part_name(ready)
    store.rename(tmp, name)
    ready = ready.model_copy(update={"uri": store.uri(name)})
    publish_message(publisher, Topic.FILES, ready)
    continuation = None
    if not final:
        carried = {"pages": guard.pages, "empty_pages": guard.empty, "recent": tuple(guard.recent)}
        carried.update(walk.carried() if walk is not None else {})
        continuation = task.model_copy(update={"part": task.part + 1, "cursor": cursor_after, **carried})
        publish_message(publisher, Topic.WALLETS, continuation)
    for child in cut.children if cut else ():
        publish_message(publisher, Topic.WALLETS, _child(task, child, cut.estimate if cut else None))
    if cut is not None:
        log.info(
            "split window %s at %d into %d windows of ~%d pages",
            task.bounds,
            cut.at,
            len(cut.children),
            cut.estimate,
            extra={"wallet": wallet, "run_id": task.run_id},
        )
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
