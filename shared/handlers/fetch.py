"""fetch(task): page one wallet from its cursor into one part file, within a budget (DESIGN rules 4–7).

Rows stream from the API to the part file page by page (memory is one page). The part is written under
a temporary name and renamed to a name derived from what it covers (run, wallet, part, cursor range,
row count), so a file's content never changes once a FileReady points at it, and a retried task that
covers the same stretch lands on the same name. Only then are FileReady and the continuation published.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from shared.clock import Clock
from shared.errors import PermanentError
from shared.messages import FileReady, WalletTask
from shared.objectstore import ObjectStore
from shared.publisher import FILES, WALLETS, Publisher, publish_message
from shared.trades import part_line
from shared.tradesource import Page, TradeSource
from shared.wallets import normalize_wallet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchBudget:
    seconds: float = 240.0  # well inside the 300 s ack deadline of wallets-push (infra/resources.yaml)
    max_pages: int = 100


@dataclass
class FetchOutcome:
    file: FileReady
    continuation: WalletTask | None
    pages: int
    mismatched_user: int


class _ReadAhead:
    """A wallet's pages, each next one fetched on a helper thread while the current one is written.

    Pages are chained by their cursor, so a walk is a sequence of round trips; reading the next page
    while this one is being written takes the writing off that sequence. The next page is asked for only
    when the walk will want it (`want_next`), so no request is spent past the budget, and at most two
    pages are in memory. The generator is advanced, and closed, only on the helper thread.
    """

    def __init__(self, pages: Iterator[Page]) -> None:
        self._pages = pages
        self._wanted = threading.Semaphore(1)  # the first page at once
        self._out: queue.Queue[Page | BaseException | None] = queue.Queue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._wanted.acquire()
                if self._stopping:
                    return
                try:
                    self._out.put(next(self._pages))
                except StopIteration:
                    self._out.put(None)
                    return
                except BaseException as exc:  # handed to the caller, raised there
                    self._out.put(exc)
                    return
        finally:
            close = getattr(self._pages, "close", None)
            if close:
                close()

    def get(self) -> Page | None:
        item = self._out.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def want_next(self) -> None:
        self._wanted.release()

    def close(self) -> None:
        self._stopping = True
        self._wanted.release()
        self._thread.join()


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
    reader = _ReadAhead(iter(source.pages(wallet, task.cursor, task.since, task.until)))
    try:
        with store.open_writer(tmp) as out:
            while (page := reader.get()) is not None:
                pages += 1
                spent = clock.monotonic() - started
                last = page.next_cursor is None or (
                    page.resumable and (pages >= budget.max_pages or spent >= budget.seconds)
                )
                if not last:
                    reader.want_next()  # fetched while this page is written
                for row in page.rows:
                    row["run_id"] = task.run_id
                    out.write(part_line(row))
                rows += len(page.rows)
                mismatched += page.mismatched_user
                cursor_after = page.next_cursor
                final = page.next_cursor is None
                if last:
                    break
    finally:
        reader.close()
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
    publish_message(publisher, FILES, ready)
    continuation = None
    if not final:
        continuation = task.model_copy(update={"part": task.part + 1, "cursor": cursor_after})
        publish_message(publisher, WALLETS, continuation)
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
