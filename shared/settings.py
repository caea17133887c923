"""Settings, read once from the environment (and .env) and validated at start-up.

Nothing here runs at import time: services call `Settings()` in their lifespan, the CLI in its
command. Each field's description names the variable, so a failed validation says what to fix.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.adapters.sources.limiter import TIERS, Window


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    trade_source: Literal["dome", "polymarket"] = Field("dome", description="TRADE_SOURCE: which API to page")
    dome_api_base_url: str = Field("https://api.domeapi.io/v1", description="DOME_API_BASE_URL")
    dome_api_key: SecretStr | None = Field(None, description="DOME_API_KEY: Bearer key (never logged)")
    dome_tier: Literal["free", "dev", "pro", "custom"] = Field("dev", description="DOME_TIER: the key's limits")
    dome_rate_per_second: int | None = Field(None, ge=1, description="DOME_RATE_PER_SECOND: custom 1 s window")
    dome_rate_per_10s: int | None = Field(None, ge=1, description="DOME_RATE_PER_10S: custom 10 s window")
    polymarket_api_base_url: str = Field(
        "https://data-api.polymarket.com", description="POLYMARKET_API_BASE_URL: the Data API (v2 routes)"
    )
    polymarket_rate_per_10s: int = Field(
        200, ge=1, description="POLYMARKET_RATE_PER_10S: the published /trades limit is 200 per 10 s"
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

    loader_flush_files: int = Field(50, ge=1, description="LOADER_FLUSH_FILES: files per load batch")
    loader_flush_seconds: float = Field(20.0, gt=0, description="LOADER_FLUSH_SECONDS: longest wait to fill a batch")

    lease_seconds: int = Field(6 * 3600, ge=60, description="LEASE_SECONDS: a dispatched wallet is not re-sent")
    max_in_flight: int = Field(2000, ge=1, description="MAX_IN_FLIGHT: wallets dispatched and not finished")
    max_delivery_attempts: int = Field(5, ge=1, description="MAX_DELIVERY_ATTEMPTS: embedded bus, then dead letter")

    bq_location: str | None = Field(None, description="BQ_LOCATION: dataset location (e.g. US)")
    bigquery_api_endpoint: str | None = Field(None, description="BIGQUERY_API_ENDPOINT: emulator endpoint")

    @field_validator("dome_api_base_url", "polymarket_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"must be an http(s):// URL with a host, not {value!r}")
        return value

    @model_validator(mode="after")
    def _custom_tier_needs_numbers(self) -> Settings:
        if self.dome_tier == "custom" and not (self.dome_rate_per_second or self.dome_rate_per_10s):
            raise ValueError("DOME_TIER=custom needs DOME_RATE_PER_SECOND and/or DOME_RATE_PER_10S")
        return self

    def rate_windows(self) -> tuple[Window, ...]:
        """The tier's windows, narrowed by any explicit per-instance numbers (terraform sets those)."""
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
    oidc_audience: str | None = Field(None, description="OIDC_AUDIENCE: verify push/scheduler tokens if set")
    log_level: str = Field("INFO", description="LOG_LEVEL")


class DispatcherSettings(CloudSettings):
    traders_table: str | None = Field(None, description="TRADERS_TABLE: project.dataset.table of wallets")


class FetcherSettings(CloudSettings):
    pass


class LoaderSettings(CloudSettings):
    pass
