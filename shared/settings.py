"""Settings, read once from the environment (and .env) and validated at start-up.

Nothing here runs at import time: services call `Settings()` in their lifespan, the CLI in its
command. Each field's description names the variable, so a failed validation says what to fix.

Reading DOME_API_KEY registers it for redaction (shared/core/errors.py, `register_secret`), so from the
moment a process has the key, no error text, dead letter or log line can show it.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.adapters.sources.limiter import TIERS, Window
from shared.core.errors import register_secret

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    trade_source: Literal["dome", "polymarket"] = Field("dome", description="TRADE_SOURCE: which API to page")
    dome_api_base_url: str = Field("https://api.domeapi.io/v1", description="DOME_API_BASE_URL")
    dome_api_key: SecretStr | None = Field(
        None, description="DOME_API_KEY: Bearer key (registered for redaction when read: never logged or echoed)"
    )
    dome_tier: Literal["free", "dev", "pro", "custom"] = Field("dev", description="DOME_TIER: the key's limits")
    dome_rate_per_second: int | None = Field(None, ge=1, description="DOME_RATE_PER_SECOND: custom 1 s window")
    dome_rate_per_10s: int | None = Field(None, ge=1, description="DOME_RATE_PER_10S: custom 10 s window")
    fetcher_max_instances: int = Field(
        1,
        ge=1,
        le=1000,
        description="FETCHER_MAX_INSTANCES: the most fetcher instances sharing the API key (Cloud Run's max"
        " instances). Above 1 each paces itself adaptively, from its floor (the key's sustained rate / this)"
        " up to the whole key, by the API's rate-limit headers and 429s; 1 (embedded): the whole key",
    )
    polymarket_api_base_url: str = Field(
        "https://data-api.polymarket.com", description="POLYMARKET_API_BASE_URL: the Data API (v2 routes)"
    )
    polymarket_rate_per_10s: int = Field(
        200, ge=1, description="POLYMARKET_RATE_PER_10S: the published /trades limit is 200 per 10 s"
    )
    gamma_api_base_url: str = Field(
        "https://gamma-api.polymarket.com", description="GAMMA_API_BASE_URL: markets and events for the Data API"
    )
    gamma_rate_per_10s: int = Field(
        300, ge=1, description="GAMMA_RATE_PER_10S: Gamma publishes 300 per 10 s for /markets (500 for /events)"
    )
    lookups: bool = Field(True, description="LOOKUPS: look up the markets and events the trades name")
    markets_refresh_seconds: int = Field(
        6 * 3600, ge=0, description="MARKETS_REFRESH_SECONDS: re-fetch an unresolved market or event this old"
    )
    lookup_miss_retry_seconds: int = Field(
        24 * 3600, ge=0, description="LOOKUP_MISS_RETRY_SECONDS: ask again for an id the API did not know"
    )
    http_connect_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="HTTP_CONNECT_TIMEOUT_SECONDS: to open a connection to the API"
    )
    http_read_timeout_seconds: float = Field(
        20.0, gt=0, le=300, description="HTTP_READ_TIMEOUT_SECONDS: silence on an open request before it fails"
    )
    http_max_attempts: int = Field(6, ge=1, le=20, description="HTTP_MAX_ATTEMPTS: per request, with back-off")
    http_retry_seconds: float = Field(
        90.0, gt=0, le=600, description="HTTP_RETRY_SECONDS: the longest one request may spend in retries"
    )
    breaker_wallets: int = Field(
        5, ge=2, le=1000, description="BREAKER_WALLETS: this many wallets failing in a row stops the run (systemic)"
    )

    fetch_budget_seconds: float = Field(
        240.0, gt=0, le=540, description="FETCH_BUDGET_SECONDS: stop a part after this long (ack deadline 300 s)"
    )
    fetch_max_pages: int = Field(100, ge=1, description="FETCH_MAX_PAGES: pages per part file")
    max_pages_per_wallet: int = Field(
        100_000, ge=1, description="MAX_PAGES_PER_WALLET: a walk longer than this is a runaway (dead-lettered)"
    )
    warehouse_process: bool = Field(
        False,
        description="WAREHOUSE_PROCESS: an embedded run's DuckDB file served by a process of its own; with more"
        " --workers it drains a backlog faster, for ~30 MB more memory (docs/benchmarks.md)",
    )
    split_windows: bool = Field(
        True, description="SPLIT_WINDOWS: fetch a big wallet as time windows in parallel (docs/design.md, Windows)"
    )
    split_window_pages: int = Field(
        10, ge=1, description="SPLIT_WINDOW_PAGES: pages a window aims at; a chain with over twice this left splits"
    )
    split_max_children: int = Field(16, ge=2, le=64, description="SPLIT_MAX_CHILDREN: windows one split hands out")

    sync_lookback_seconds: int = Field(
        86_400,
        ge=0,
        description="SYNC_LOOKBACK_SECONDS: a sync asks from the newest stored trade minus this (late-indexed trades)",
    )

    loader_flush_files: int = Field(50, ge=1, description="LOADER_FLUSH_FILES: files per load batch")
    loader_flush_seconds: float = Field(20.0, gt=0, description="LOADER_FLUSH_SECONDS: longest wait to fill a batch")

    lease_seconds: int = Field(6 * 3600, ge=60, description="LEASE_SECONDS: a dispatched wallet is not re-sent")
    max_in_flight: int = Field(2000, ge=1, description="MAX_IN_FLIGHT: wallets dispatched and not finished")
    max_delivery_attempts: int = Field(5, ge=1, description="MAX_DELIVERY_ATTEMPTS: embedded bus, then dead letter")

    bq_location: str | None = Field(None, description="BQ_LOCATION: dataset location (e.g. US)")
    bigquery_api_endpoint: str | None = Field(None, description="BIGQUERY_API_ENDPOINT: emulator endpoint")

    @field_validator("dome_api_base_url", "polymarket_api_base_url", "gamma_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"must be an http(s):// URL with a host, not {value!r}")
        return value

    @model_validator(mode="after")
    def _register_the_key(self) -> Settings:
        if self.dome_api_key is not None:
            register_secret(self.dome_api_key.get_secret_value())
        return self

    @model_validator(mode="after")
    def _custom_tier_needs_numbers(self) -> Settings:
        if self.dome_tier == "custom" and not (self.dome_rate_per_second or self.dome_rate_per_10s):
            raise ValueError("DOME_TIER=custom needs DOME_RATE_PER_SECOND and/or DOME_RATE_PER_10S")
        return self

    def rate_windows(self) -> tuple[Window, ...]:
        """The key's windows: the tier's, or the explicit numbers of DOME_TIER=custom (terraform sets
        those from its tier map). Every instance's ceiling: one instance never exceeds the key."""
        base = {w.seconds: w.limit for w in TIERS.get(self.dome_tier, ())}
        if self.dome_rate_per_second:
            base[1.0] = self.dome_rate_per_second
        if self.dome_rate_per_10s:
            base[10.0] = self.dome_rate_per_10s
        return tuple(Window(limit, seconds) for seconds, limit in sorted(base.items()))


class CloudSettings(Settings):
    """What every Cloud Run service reads on top of the pipeline settings."""

    gcp_project: str = Field(description="GCP_PROJECT: the project of the topics, bucket and datasets")
    gcs_bucket: str = Field(description="GCS_BUCKET: where the part files go")
    bq_dataset: str = Field("polymarket", description="BQ_DATASET: trades, checkpoints, leases")
    bq_staging_dataset: str = Field("polymarket_staging", description="BQ_STAGING_DATASET: per-batch staging")
    log_level: str = Field("INFO", description="LOG_LEVEL")

    # Who may call which route (docs/design.md, "Who may call"): a Google-signed ID token for OIDC_AUDIENCE
    # whose verified `email` is in the route's list. Operators are one service account the operators'
    # group may impersonate (ID tokens carry an email, never group membership).
    oidc_audience: str | None = Field(
        None,
        description="OIDC_AUDIENCE: the audience callers' ID tokens must carry (the service's URL); with it set, "
        "or on Cloud Run, every route but /healthz needs a valid token; on Cloud Run without it every call is "
        "refused (503)",
    )
    allowed_scheduler_emails: str = Field(
        "",
        description="ALLOWED_SCHEDULER_EMAILS: comma-separated service-account emails that may POST /dispatch "
        "(the Cloud Scheduler job's OIDC identity)",
    )
    allowed_operator_emails: str = Field(
        "",
        description="ALLOWED_OPERATOR_EMAILS: comma-separated emails that may call GET /status, POST /verify and "
        "POST /dead-letters/replay: the operator service account, which operators impersonate "
        "(gcloud auth print-identity-token --impersonate-service-account=OPERATOR_SA --audiences=URL "
        "--include-email)",
    )
    allowed_push_emails: str = Field(
        "",
        description="ALLOWED_PUSH_EMAILS: comma-separated service-account emails that may POST / (the push "
        "subscriptions' OIDC identities)",
    )
    k_service: str | None = Field(
        None, description="K_SERVICE: set by Cloud Run; there, missing OIDC_AUDIENCE or callers fail closed"
    )

    @field_validator("allowed_scheduler_emails", "allowed_operator_emails", "allowed_push_emails")
    @classmethod
    def _emails(cls, value: str) -> str:
        emails = [e.strip().lower() for e in value.split(",") if e.strip()]
        bad = [e for e in emails if not _EMAIL.fullmatch(e)]
        if bad:
            raise ValueError(f"want comma-separated emails, not {', '.join(map(repr, bad))}")
        return ",".join(emails)


class DispatcherSettings(CloudSettings):
    traders_table: str | None = Field(None, description="TRADERS_TABLE: project.dataset.table of wallets")
    sync_daily: bool = Field(
        True, description="SYNC_DAILY: scheduled dispatches also sync complete wallets once a day (design.md, Sync)"
    )
    sync_hour_utc: int = Field(
        2, ge=0, le=23, description="SYNC_HOUR_UTC: from this hour each day, complete wallets are due for their sync"
    )


class FetcherSettings(CloudSettings):
    pass


class LoaderSettings(CloudSettings):
    pass
