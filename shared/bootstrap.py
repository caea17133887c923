"""The one composition root: settings in, each process's adapters out, typed by their ports.

    dispatcher(settings)  -> DispatcherDeps   BigQuery, Pub/Sub publisher, dead-letter table + inbox
    fetcher(settings)     -> FetcherDeps      Pub/Sub publisher, GCS, the trade source, dead-letter topic
    loader(settings)      -> LoaderDeps       BigQuery, the parts bucket (whose parts it trusts), dead-letter topic
    embedded(settings, …) -> EmbeddedDeps     the in-process bus + DuckDB and a folder (or BigQuery + GCS)

Tests replace adapters through `Overrides`, a frozen dataclass: a misspelt name is a TypeError, not a
silently built real adapter. With the emulators' variables set (STORAGE_EMULATOR_HOST,
PUBSUB_EMULATOR_HOST, BIGQUERY_API_ENDPOINT) the same code talks to the local stand-ins with anonymous
credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.adapters.clock import SystemClock
from shared.adapters.local.bus import Bus
from shared.adapters.local.files import LocalObjectStore
from shared.adapters.sources.breaker import Breaker
from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.gamma import GammaSource
from shared.adapters.sources.limiter import RateLimiter, Window
from shared.adapters.sources.polymarket import PolymarketSource
from shared.adapters.sources.share import FleetShare
from shared.adapters.sql.deadletters import SqlDeadLetters
from shared.adapters.sql.warehouse import SqlWarehouse
from shared.core.windows import SplitPolicy
from shared.handlers.fetch import FetchBudget
from shared.handlers.lookups import LookupPolicy
from shared.ports.clock import Clock
from shared.ports.deadletters import DeadLetterInbox, DeadLetterSink, DeadLetterStore
from shared.ports.objectstore import ObjectStore
from shared.ports.publisher import Publisher
from shared.ports.source import MarketSource, TradeCounter, TradeSource
from shared.ports.warehouse import Warehouse
from shared.resources import load_resources
from shared.settings import CloudSettings, DispatcherSettings, FetcherSettings, LoaderSettings, Settings

if TYPE_CHECKING:  # imported where they are built: see "Google clients" below
    from google.auth.credentials import Credentials

    from shared.adapters.gcp.bigquery import BigQueryWarehouse
    from shared.adapters.gcp.pubsub import PubSubPublisher
    from shared.adapters.gcp.storage import GcsObjectStore
    from shared.web.auth import Certificates


@dataclass(frozen=True)
class Overrides:
    """Adapters a test supplies instead of the real ones (None: build the real one)."""

    warehouse: SqlWarehouse | None = None
    publisher: Publisher | None = None
    dead_letters: DeadLetterSink | None = None
    inbox: DeadLetterInbox | None = None
    store: ObjectStore | None = None
    source: TradeSource | None = None
    markets: MarketSource | None = None
    clock: Clock | None = None
    certificates: Certificates | None = None  # Google's certificates, for the services' caller check
    counter: TradeCounter | None = None  # the API's own counts, for the dispatcher's /verify


@dataclass(frozen=True)
class DispatcherDeps:
    warehouse: Warehouse
    publisher: Publisher
    dead_letters: DeadLetterStore
    inbox: DeadLetterInbox
    clock: Clock
    counter: TradeCounter | None = None  # POST /verify compares with the API's counts (None: "n/a")


@dataclass(frozen=True)
class FetcherDeps:
    publisher: Publisher
    store: ObjectStore
    source: TradeSource
    markets: MarketSource
    dead_letters: DeadLetterSink
    clock: Clock


@dataclass(frozen=True)
class LoaderDeps:
    warehouse: Warehouse
    store: ObjectStore  # only to tell its own part files (name_from_uri); the load job reads them
    dead_letters: DeadLetterSink
    clock: Clock


@dataclass(frozen=True)
class EmbeddedDeps:
    warehouse: SqlWarehouse
    dead_letters: DeadLetterStore
    bus: Bus
    store: ObjectStore
    source: TradeSource
    markets: MarketSource
    clock: Clock


@dataclass(frozen=True)
class BigQueryTarget:
    """Where `backfill run --warehouse bigquery` writes: a dataset of a project, part files in a bucket
    (or a local folder, uploaded by the load jobs)."""

    project: str
    dataset: str
    staging_dataset: str
    bucket: str | None = None
    location: str | None = None
    endpoint: str | None = None  # BIGQUERY_API_ENDPOINT: an emulator


# -- trade sources ------------------------------------------------------------------------------------


def key_limiter(windows: tuple[Window, ...], settings: Settings, clock: Clock) -> RateLimiter:
    """The key's windows as every instance's ceiling, and with more than one fetcher instance sharing
    the key, this instance's adaptive share of it (shared/adapters/sources/share.py)."""
    instances = settings.fetcher_max_instances
    share = FleetShare(windows, instances) if instances > 1 else None
    return RateLimiter(windows, clock=clock, share=share)


def make_source(settings: Settings, *, clock: Clock | None = None, taker_only: bool = False) -> TradeSource:
    """The configured trade source with its client-side limiter (`key_limiter`)."""
    clock = clock or SystemClock()
    http = {
        "connect_timeout": settings.http_connect_timeout_seconds,
        "read_timeout": settings.http_read_timeout_seconds,
        "max_attempts": settings.http_max_attempts,
        "retry_seconds": settings.http_retry_seconds,
        "breaker": Breaker(clock, threshold=settings.breaker_wallets),
        "clock": clock,
    }
    if settings.trade_source == "dome":
        key = settings.dome_api_key.get_secret_value() if settings.dome_api_key else None
        limiter = key_limiter(settings.rate_windows(), settings, clock)
        return DomeSource(settings.dome_api_base_url, key, limiter, **http)
    limiter = key_limiter((Window(settings.polymarket_rate_per_10s, 10.0),), settings, clock)
    return PolymarketSource(settings.polymarket_api_base_url, limiter, taker_only=taker_only, **http)


def trade_counter(settings: Settings, *, clock: Clock | None = None) -> TradeCounter | None:
    """The API's own count of a wallet's trades, where one request gives it: Dome (a client of its own,
    under the key's limits as this process has them). The Data API has no total: None."""
    source = make_source(settings, clock=clock)
    if isinstance(source, DomeSource):
        return source
    source.close()
    return None


def make_market_source(settings: Settings, trades: TradeSource, *, clock: Clock | None = None) -> MarketSource:
    """Where markets and events come from: Dome's own endpoints, through the SAME client as its trades
    (one key, one limiter, one breaker), or Gamma for the Data API source (its own limits)."""
    if isinstance(trades, DomeSource):
        return trades
    clock = clock or SystemClock()
    return GammaSource(
        settings.gamma_api_base_url,
        RateLimiter((Window(settings.gamma_rate_per_10s, 10.0),), clock=clock),
        connect_timeout=settings.http_connect_timeout_seconds,
        read_timeout=settings.http_read_timeout_seconds,
        max_attempts=settings.http_max_attempts,
        retry_seconds=settings.http_retry_seconds,
        clock=clock,
    )


def lookup_policy(settings: Settings) -> LookupPolicy | None:
    """When markets and events are looked up again (None: LOOKUPS=false, not at all)."""
    if not settings.lookups:
        return None
    return LookupPolicy(
        refresh_seconds=settings.markets_refresh_seconds,
        miss_retry_seconds=settings.lookup_miss_retry_seconds,
        lease_seconds=min(settings.lease_seconds, 3600),
    )


def fetch_budget(settings: Settings, max_pages: int | None = None) -> FetchBudget:
    """Where a part ends (FETCH_BUDGET_SECONDS, FETCH_MAX_PAGES or `max_pages`) and the runaway guard."""
    return FetchBudget(
        seconds=settings.fetch_budget_seconds,
        max_pages=max_pages or settings.fetch_max_pages,
        max_wallet_pages=settings.max_pages_per_wallet,
        split=SplitPolicy(
            window_pages=settings.split_window_pages,
            max_children=settings.split_max_children,
            enabled=settings.split_windows,
        ),
    )


# -- Google clients -----------------------------------------------------------------------------------
#
# The Google client libraries and the adapters over them are imported here, where a cloud adapter is
# built, and not with this module: together they hold ~100 MB of resident memory (BigQuery's client
# brings pyarrow, numpy and gRPC) that a run on DuckDB and a local folder never uses, and that run's
# peak must stay under 250 MB (docs/benchmarks.md, "Memory flat in the warehouse's size").


def _emulated() -> Credentials | None:
    """Anonymous credentials against the emulators; None lets the clients find the real ones (ADC)."""
    from google.auth.credentials import AnonymousCredentials

    if os.environ.get("STORAGE_EMULATOR_HOST") or os.environ.get("PUBSUB_EMULATOR_HOST"):
        return AnonymousCredentials()
    return None


def bigquery_warehouse(target: BigQueryTarget, traders_table: str | None = None) -> BigQueryWarehouse:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from shared.adapters.gcp.bigquery import BigQueryWarehouse

    options = ClientOptions(api_endpoint=target.endpoint) if target.endpoint else None
    credentials = AnonymousCredentials() if target.endpoint else None
    client = bigquery.Client(project=target.project, credentials=credentials, client_options=options)
    return BigQueryWarehouse(
        client,
        target.project,
        target.dataset,
        target.staging_dataset,
        traders_table=traders_table,
        location=target.location,
    )


def gcs_store(project: str, bucket: str) -> GcsObjectStore:
    from google.cloud import storage

    from shared.adapters.gcp.storage import GcsObjectStore

    return GcsObjectStore(storage.Client(project=project, credentials=_emulated()), bucket)


def cloud_target(s: CloudSettings) -> BigQueryTarget:
    return BigQueryTarget(
        s.gcp_project, s.bq_dataset, s.bq_staging_dataset, s.gcs_bucket, s.bq_location, s.bigquery_api_endpoint
    )


def _publisher(s: CloudSettings) -> PubSubPublisher:
    from google.cloud.pubsub_v1 import PublisherClient

    from shared.adapters.gcp.pubsub import PubSubPublisher

    return PubSubPublisher(PublisherClient(), s.gcp_project, load_resources().topic_names())


# -- the services -------------------------------------------------------------------------------------


def dispatcher(s: DispatcherSettings, o: Overrides = Overrides()) -> DispatcherDeps:
    from google.cloud.pubsub_v1 import SubscriberClient

    from shared.adapters.gcp.pubsub import PubSubDeadLetterInbox

    warehouse = o.warehouse or bigquery_warehouse(cloud_target(s), s.traders_table)
    clock = o.clock or SystemClock()
    inbox = o.inbox or PubSubDeadLetterInbox(
        SubscriberClient(), s.gcp_project, load_resources().dead_letter_subscriptions()
    )
    # Dome's counts for POST /verify, when the dispatcher holds a key: Terraform gives it one (and its
    # share of the key's limits) with verify_api_counts = true.
    counter = o.counter or (trade_counter(s, clock=clock) if s.trade_source == "dome" and s.dome_api_key else None)
    return DispatcherDeps(
        warehouse, o.publisher or _publisher(s), SqlDeadLetters(warehouse, clock), inbox, clock, counter
    )


def fetcher(s: FetcherSettings, o: Overrides = Overrides()) -> FetcherDeps:
    from shared.adapters.gcp.pubsub import PubSubDeadLetterSink

    publisher = o.publisher or _publisher(s)
    source = o.source or make_source(s)
    return FetcherDeps(
        publisher,
        o.store or gcs_store(s.gcp_project, s.gcs_bucket),
        source,
        o.markets or make_market_source(s, source),
        o.dead_letters or PubSubDeadLetterSink(_as_pubsub(publisher)),
        o.clock or SystemClock(),
    )


def loader(s: LoaderSettings, o: Overrides = Overrides()) -> LoaderDeps:
    from shared.adapters.gcp.pubsub import PubSubDeadLetterSink

    dead_letters = o.dead_letters or PubSubDeadLetterSink(_as_pubsub(o.publisher or _publisher(s)))
    return LoaderDeps(
        o.warehouse or bigquery_warehouse(cloud_target(s)),
        o.store or gcs_store(s.gcp_project, s.gcs_bucket),
        dead_letters,
        o.clock or SystemClock(),
    )


def _as_pubsub(publisher: Publisher) -> PubSubPublisher:
    from shared.adapters.gcp.pubsub import PubSubPublisher

    if not isinstance(publisher, PubSubPublisher):
        raise TypeError("a dead-letter topic needs the Pub/Sub publisher; override dead_letters too")
    return publisher


# -- one process --------------------------------------------------------------------------------------


def _duckdb(db: Path, *, must_exist: bool, read_only: bool, process: bool) -> SqlWarehouse:
    if process and not read_only and str(db) != ":memory:":
        from shared.adapters.local.warehouse_process import WarehouseProcess

        return WarehouseProcess(db, must_exist=must_exist)
    from shared.adapters.local.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(db, must_exist=must_exist, read_only=read_only)


def embedded(
    settings: Settings,
    *,
    db: Path | None = None,
    bigquery: BigQueryTarget | None = None,
    parts: Path | None = None,
    read_only: bool = False,
    must_exist: bool = False,
    process: bool = False,
    backoff: tuple[float, float] = (0.2, 5.0),
    o: Overrides = Overrides(),
) -> EmbeddedDeps:
    """The embedded runner's graph: DuckDB at `db` with its parts folder beside it, or BigQuery with
    parts in `bigquery.bucket` (or the `parts` folder). The caller creates or checks the schema, and
    closes the warehouse. `process`: the DuckDB file is opened by a process of its own that serves this
    one (`WarehouseProcess`, a write under WAREHOUSE_PROCESS=true: DuckDB there does not wait for the
    fetch workers' GIL); otherwise in this process (DuckDB is imported only then)."""
    clock = o.clock or SystemClock()
    if bigquery is not None:
        warehouse: SqlWarehouse = o.warehouse or bigquery_warehouse(bigquery)
        folder = parts or Path("backfill-parts")
        store: ObjectStore = o.store or (
            gcs_store(bigquery.project, bigquery.bucket) if bigquery.bucket else LocalObjectStore(folder)
        )
    else:
        if db is None:
            raise ValueError("the embedded runner needs a DuckDB file or a BigQuery target")
        warehouse = o.warehouse or _duckdb(db, must_exist=must_exist, read_only=read_only, process=process)
        store = o.store or LocalObjectStore(parts or db.parent / f"{db.stem}-parts")
    dead_letters = SqlDeadLetters(warehouse, clock)
    attempts = settings.max_delivery_attempts
    bus = Bus(dead_letters, clock=clock, max_attempts=attempts, min_backoff=backoff[0], max_backoff=backoff[1])
    source = o.source or make_source(settings, clock=clock)
    markets = o.markets or make_market_source(settings, source, clock=clock)
    return EmbeddedDeps(warehouse, dead_letters, bus, store, source, markets, clock)
