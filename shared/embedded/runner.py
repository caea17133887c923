"""The embedded runner: dispatch → fetch pool → loader, in one process, on the local bus.

The same handlers as the services, wired by shared/bootstrap.py to the in-process bus and DuckDB with
a folder (or BigQuery with a bucket), and the same delivery policy (shared/delivery.py). A kill at any
moment loses nothing: every durable step is in the warehouse (one transaction per batch), and the next
run's dispatch resumes each unfinished wallet from the end of its committed chain of parts.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from shared import delivery
from shared.adapters.local.bus import Delivery
from shared.bootstrap import EmbeddedDeps
from shared.core.errors import InvalidMessage, PipelineError
from shared.core.messages import FileReady, LookupReady, LookupTask, decode_file, decode_task
from shared.delivery import Outcome, Verdict
from shared.embedded.observed import ObservedSource
from shared.handlers.dispatch import DispatchResult, dispatch
from shared.handlers.fetch import FetchBudget, fetch
from shared.handlers.load import load
from shared.handlers.lookups import LookupPolicy, dispatch_lookups, fetch_lookup
from shared.ports.publisher import Topic

log = logging.getLogger(__name__)
MALLOC_ARENAS = 2


@dataclass(frozen=True)
class RunConfig:
    """The embedded run's own knobs; the pipeline's (attempts, leases, part size) come from Settings."""

    run_id: str
    budget: FetchBudget
    lease_seconds: int
    workers: int = 8
    max_in_flight: int = 200
    flush_files: int = 50
    flush_seconds: float = 0.05  # the loader's longest wait for a file before it looks again (and sees a stop)
    dispatch: bool = True  # False: only drain what is already queued (a dead-letter replay)
    lookups: LookupPolicy | None = None  # markets and events, scheduled with the wallets (None: not at all)
    sync: bool = False  # also sync every complete wallet not walked since the run started (`backfill sync`)
    lookback_seconds: int = 86_400  # a sync asks from the newest stored trade minus this


@dataclass
class Progress:
    started: float = field(default_factory=time.monotonic)
    parts_loaded: int = 0
    rows_loaded: int = 0
    wallets_completed: int = 0
    dispatched: int = 0
    lookups: int = 0  # lookup tasks (markets, events) published
    fatal: PipelineError | None = None
    interrupted: bool = False  # stopped by the user (Ctrl-C), not finished


class EmbeddedRunner:
    def __init__(self, config: RunConfig, deps: EmbeddedDeps) -> None:
        self.config = config
        self.deps = deps
        self.warehouse = deps.warehouse
        self.source = ObservedSource(deps.source, deps.clock)  # what the progress display reads
        self.bus = deps.bus
        self.dead_letters = deps.dead_letters
        self.clock = deps.clock
        self.progress = Progress()
        self._stop = threading.Event()
        self._started = self.clock.now()
        self._last_published = True  # what the last dispatch did (the first is due at once)
        self._completed_at_dispatch = 0  # progress.wallets_completed when the last dispatch began

    def stop(self, interrupted: bool = False) -> None:
        """End the run soon: fetches end their part at the next page where a part may end, the loader
        commits what is queued, nothing new starts. Everything committed is kept."""
        self.progress.interrupted = self.progress.interrupted or interrupted
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, on_tick: Callable[[EmbeddedRunner], None] | None = None) -> Progress:
        self._started = self.clock.now()
        limit_malloc_arenas()
        # One process owns all in-flight work: leases left by a killed run are void.
        self.warehouse.release_leases("in_flight")
        threads = [
            threading.Thread(target=self._fetch_worker, name=f"fetch-{i}", daemon=True)
            for i in range(self.config.workers)
        ]
        loader = threading.Thread(target=self._loader, name="loader", daemon=True)
        for t in (*threads, loader):
            t.start()
        last_dispatch = 0.0
        try:
            while not self._stop.is_set() and self.progress.fatal is None:
                # Done only when nothing was queued or in a worker's hands BEFORE a dispatch that then found
                # nothing to send: a pass whose dispatch was skipped (throttled) proves nothing, and neither
                # does an idle queue seen after a dispatch that ran while the last batch was committing.
                idle = self.bus.idle()
                if not self.config.dispatch:
                    if idle:
                        break
                elif self._dispatch_due(time.monotonic() - last_dispatch, idle):
                    last_dispatch = time.monotonic()
                    result = self._dispatch()
                    if idle and not result.published and not result.dead_lettered and not result.lookups:
                        if result.in_flight_before == 0:
                            break
                        # Leases with no work behind them (nothing is queued): void in one process.
                        self.warehouse.release_leases("in_flight")
                if on_tick:
                    on_tick(self)
                time.sleep(0.05)
        finally:
            self._stop.set()
            loader.join(timeout=60)  # let a commit in progress finish: it is one transaction either way
        if self.progress.fatal is not None:
            raise self.progress.fatal
        return self.progress

    def _dispatch_due(self, since_last: float, idle: bool) -> bool:
        """Dispatch again when the workers may soon run dry (few tasks queued) and the last dispatch
        published something or a wallet has completed since (room under max_in_flight); or every 2 s
        (lookups, retried wallets, expired leases); or when nothing is left to do. Each call is a few
        warehouse queries, which the loader waits for: at the end of a run, with every wallet out and
        the loader catching up, a dispatch every 0.25 s that could find nothing held it back."""
        if since_last < 0.25:
            return False
        if idle or since_last >= 2.0:
            return True
        could_find = self._last_published or self.progress.wallets_completed != self._completed_at_dispatch
        return could_find and self.bus.pending(Topic.WALLETS) < 2 * self.config.workers

    def _dispatch(self) -> DispatchResult:
        self._completed_at_dispatch = self.progress.wallets_completed
        result = dispatch(
            warehouse=self.warehouse,
            publisher=self.bus,
            dead_letters=self.dead_letters,
            clock=self.clock,
            run_id=self.config.run_id,
            source=self.source.name,
            max_in_flight=self.config.max_in_flight,
            lease_seconds=self.config.lease_seconds,
            sync_before=self._started if self.config.sync else None,
            lookback_seconds=self.config.lookback_seconds,
        )
        self.progress.dispatched += len(result.published)
        if self.config.lookups is not None:
            lookups = dispatch_lookups(
                warehouse=self.warehouse,
                publisher=self.bus,
                clock=self.clock,
                run_id=self.config.run_id,
                source=self.source.name,
                policy=self.config.lookups,
                started=self._started,
                sync_before=self._started if self.config.sync else None,
            )
            self.progress.lookups += len(lookups)
            result.lookups = len(lookups)
        self._last_published = bool(result.published or result.lookups)
        return result

    def _settle(self, message: Delivery, verdict: Verdict) -> None:
        self.bus.settle(message, verdict)
        if verdict.outcome is Outcome.HALT and isinstance(verdict.error, PipelineError):
            self.progress.fatal = self.progress.fatal or verdict.error

    def _fetch_worker(self) -> None:
        while not self._stop.is_set():
            message = self.bus.get(Topic.WALLETS, timeout=0.2)
            if message is None:
                continue
            verdict = delivery.run(partial(self._fetch, message))
            self._settle(message, verdict)

    def _fetch(self, message: Delivery) -> None:
        task = decode_task(message.data)
        if isinstance(task, LookupTask):
            fetch_lookup(task, source=self.deps.markets, store=self.deps.store, publisher=self.bus, clock=self.clock)
            return
        fetch(
            task,
            source=self.source,
            store=self.deps.store,
            publisher=self.bus,
            clock=self.clock,
            budget=self.config.budget,
            cancelled=self._stop.is_set,
        )

    def _loader(self) -> None:
        while not (self._stop.is_set() and self.bus.pending(Topic.FILES) == 0) and self.progress.fatal is None:
            batch = self.bus.get_batch(Topic.FILES, self.config.flush_files, self.config.flush_seconds)
            if batch:
                self._load(batch)
            elif self._stop.is_set():
                return

    def _load(self, batch: list[Delivery]) -> None:
        received: list[tuple[FileReady | LookupReady, Delivery]] = []
        for message in batch:
            try:
                received.append((decode_file(message.data), message))
            except InvalidMessage as exc:
                self._settle(message, delivery.judge(exc))
        for group in by_rows(received, self.warehouse.batch_rows):
            self._commit(group)

    def _commit(self, received: list[tuple[FileReady | LookupReady, Delivery]]) -> None:
        """One transaction of the warehouse for these files (and one verdict per message)."""
        try:
            result = load([r for r, _ in received], warehouse=self.warehouse, store=self.deps.store, clock=self.clock)
        except Exception as exc:
            verdict = delivery.judge(exc)
            for _, d in received:
                self._settle(d, verdict)
            return
        for ready, d in received:
            self._settle(d, delivery.judge(result.error_of(ready)))
        self.progress.parts_loaded += len(result.committed)
        self.progress.rows_loaded += sum(f.rows for f in result.committed)
        self.progress.wallets_completed += len(result.completed_wallets)


def by_rows(
    received: list[tuple[FileReady | LookupReady, Delivery]], limit: int | None
) -> list[list[tuple[FileReady | LookupReady, Delivery]]]:
    """The batch in consecutive groups of at most `limit` rows (a larger file alone), for a warehouse
    whose commit holds a batch's rows in memory (DuckDB: `DuckDBWarehouse.batch_rows`); None: one group."""
    if limit is None:
        return [received] if received else []
    groups: list[list[tuple[FileReady | LookupReady, Delivery]]] = []
    rows = 0
    for item in received:
        if not groups or rows + item[0].rows > limit:
            groups.append([])
            rows = 0
        groups[-1].append(item)
        rows += item[0].rows
    return groups


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the freed
    memory of a page parsed on one worker's arena is not reused by another's: with a dozen threads the
    process's peak grows by tens of MB (18 MB on the whale-last list, `make bench-memory`). Two arenas,
    set before the workers start (M_ARENA_MAX = -8). Elsewhere than glibc, nothing to do."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-8, arenas)
