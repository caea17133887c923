"""The embedded runner: dispatch → fetch pool → loader, in one process, on the local adapters.

The same handlers as the services, wired to the in-process bus, a local folder and DuckDB. A kill at
any moment loses nothing: every durable step is in DuckDB (one transaction per batch), and the next
run's dispatch resumes each unfinished wallet from the end of its committed chain of parts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.clock import Clock, SystemClock
from shared.deadletters import DuckDBDeadLetters
from shared.embedded.bus import Bus, Delivery
from shared.errors import InvalidMessage, PermanentError, PipelineError, SystemicError
from shared.handlers.dispatch import dispatch
from shared.handlers.fetch import FetchBudget, fetch
from shared.handlers.load import load
from shared.messages import FileReady, WalletTask, decode
from shared.objectstore import LocalObjectStore
from shared.publisher import FILES, WALLETS
from shared.tradesource import TradeSource
from shared.warehouse.duckdb import DuckDBWarehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    run_id: str
    workers: int = 8
    max_in_flight: int = 200
    lease_seconds: int = 24 * 3600
    budget: FetchBudget = field(default_factory=lambda: FetchBudget(seconds=60.0, max_pages=50))
    flush_files: int = 50
    flush_seconds: float = 0.5
    max_attempts: int = 5
    min_backoff: float = 0.2
    max_backoff: float = 5.0
    dispatch: bool = True  # False: only drain what is already queued (a dead-letter replay)


@dataclass
class Progress:
    started: float = field(default_factory=time.monotonic)
    parts_loaded: int = 0
    rows_loaded: int = 0
    wallets_completed: int = 0
    dispatched: int = 0
    fatal: PipelineError | None = None


class EmbeddedRunner:
    def __init__(
        self,
        config: RunConfig,
        *,
        source: TradeSource,
        warehouse: DuckDBWarehouse,
        store: LocalObjectStore,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.warehouse = warehouse
        self.store = store
        self.clock = clock or SystemClock()
        self.dead_letters = DuckDBDeadLetters(warehouse.con, warehouse.lock, self.clock.now)
        self.bus = Bus(
            self.dead_letters,
            max_attempts=config.max_attempts,
            min_backoff=config.min_backoff,
            max_backoff=config.max_backoff,
        )
        self.progress = Progress()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, on_tick: Callable[[EmbeddedRunner], None] | None = None) -> Progress:
        self.warehouse.ensure_schema()
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
                published = 0
                if self.config.dispatch and time.monotonic() - last_dispatch > 0.25:
                    last_dispatch = time.monotonic()
                    result = dispatch(
                        warehouse=self.warehouse,
                        publisher=self.bus,
                        dead_letters=self.dead_letters,
                        clock=self.clock,
                        run_id=self.config.run_id,
                        source=self.source.name,
                        max_in_flight=self.config.max_in_flight,
                        lease_seconds=self.config.lease_seconds,
                    )
                    published = len(result.published) + len(result.dead_lettered)
                    self.progress.dispatched += len(result.published)
                if on_tick:
                    on_tick(self)
                if published == 0 and self.bus.idle():
                    break
                time.sleep(0.05)
        finally:
            self._stop.set()
            loader.join(timeout=120)  # let a commit in progress finish: it is one transaction either way
        if self.progress.fatal is not None:
            raise self.progress.fatal
        return self.progress

    def _fetch_worker(self) -> None:
        while not self._stop.is_set():
            delivery = self.bus.get(WALLETS, timeout=0.2)
            if delivery is None:
                continue
            try:
                task = decode(WalletTask, delivery.data)
                fetch(
                    task,
                    source=self.source,
                    store=self.store,
                    publisher=self.bus,
                    clock=self.clock,
                    budget=self.config.budget,
                )
            except PermanentError as exc:
                log.warning("dead-lettering %s: %s", delivery.attributes.get("wallet"), exc)
                self.bus.dead_letter(delivery, exc)
            except SystemicError as exc:
                log.error("systemic failure, stopping: %s", exc)
                self.progress.fatal = exc
                self.bus.nack(delivery, exc)
            except Exception as exc:
                log.info("retrying %s later: %s", delivery.attributes.get("wallet"), exc)
                self.bus.nack(delivery, exc)
            else:
                self.bus.ack(delivery)

    def _loader(self) -> None:
        while not (self._stop.is_set() and self.bus.pending(FILES) == 0) and self.progress.fatal is None:
            batch = self.bus.get_batch(FILES, self.config.flush_files, self.config.flush_seconds)
            if batch:
                self._load(batch)
            elif self._stop.is_set():
                return

    def _load(self, batch: list[Delivery]) -> None:
        files: dict[str, list[Delivery]] = {}
        messages: list[FileReady] = []
        for delivery in batch:
            try:
                ready = decode(FileReady, delivery.data)
            except InvalidMessage as exc:
                self.bus.dead_letter(delivery, exc)
                continue
            files.setdefault(ready.uri, []).append(delivery)
            messages.append(ready)
        try:
            result = load(messages, warehouse=self.warehouse, clock=self.clock)
        except SystemicError as exc:
            self.progress.fatal = exc
            for d in (d for ds in files.values() for d in ds):
                self.bus.nack(d, exc)
            return
        except Exception as exc:
            log.warning("load batch failed, will retry: %s", exc)
            for d in (d for ds in files.values() for d in ds):
                self.bus.nack(d, exc)
            return
        for uri, error in result.failed.items():
            for d in files.pop(uri, []):
                self.bus.dead_letter(d, error)
        for ds in files.values():
            for d in ds:
                self.bus.ack(d)
        self.progress.parts_loaded += len(result.committed)
        self.progress.rows_loaded += sum(f.rows for f in result.committed)
        self.progress.wallets_completed += len(result.completed_wallets)
