"""The dispatcher's HTTP interface.

POST /dispatch              {run_id?, mode: backfill|incremental, max_in_flight?} -> what it published
POST /dead-letters/replay   {error_class?, wallet?, max, dry_run}                 -> what it replayed
GET  /status                wallets by status, trades, in flight, dead letters, newest load
GET  /healthz

Each call first moves the letters waiting on the dead-letter topics into the dead-letter table, so a
wallet the fetcher or Pub/Sub dead-lettered is parked before anything is dispatched again.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared import bootstrap
from shared.bootstrap import DispatcherDeps, Overrides
from shared.core.messages import RunId
from shared.handlers.dispatch import DispatchResult, dispatch
from shared.handlers.replay import collect_dead_letters, replay_dead_letters
from shared.logs import setup_json_logging
from shared.settings import DispatcherSettings
from shared.web import app as webapp


class DispatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: RunId | None = None
    mode: Literal["backfill", "incremental"] = "backfill"
    max_in_flight: int | None = Field(None, ge=1, le=1_000_000)


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_class: str | None = None
    wallet: str | None = None
    max: int = Field(100, ge=1, le=10_000)
    dry_run: bool = False


def create_app(settings: DispatcherSettings | None = None, overrides: Overrides | None = None) -> FastAPI:
    """`overrides` replace adapters (tests); everything else is built from settings in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or DispatcherSettings()
        if overrides is None:
            setup_json_logging(s.log_level, s.gcp_project)
        deps = bootstrap.dispatcher(s, overrides or Overrides())
        deps.warehouse.check_schema()
        app.state.settings, app.state.deps = s, deps
        yield

    app = FastAPI(title="dispatcher", lifespan=lifespan)
    webapp.install(app, lambda: getattr(getattr(app.state, "settings", None), "oidc_audience", None))

    def deps() -> DispatcherDeps:
        d: DispatcherDeps = app.state.deps
        collect_dead_letters(d.inbox, d.dead_letters)
        return d

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/dispatch")
    async def post_dispatch(body: DispatchRequest | None = None) -> dict[str, Any]:
        body = body or DispatchRequest()
        s: DispatcherSettings = app.state.settings
        run_id = body.run_id or "run-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")

        def call() -> DispatchResult:
            d = deps()
            return dispatch(
                warehouse=d.warehouse,
                publisher=d.publisher,
                dead_letters=d.dead_letters,
                clock=d.clock,
                run_id=run_id,
                source=s.trade_source,
                mode=body.mode,
                max_in_flight=body.max_in_flight or s.max_in_flight,
                lease_seconds=s.lease_seconds,
            )

        result = await run_in_threadpool(call)
        answer: dict[str, Any] = {
            "run_id": run_id,
            "mode": body.mode,
            "published": len(result.published),
            "dead_lettered": len(result.dead_lettered),
            "in_flight_before": result.in_flight_before,
            "wallets": [t.wallet for t in result.published[:100]],
            "refused_source_switch": len(result.source_conflicts),
        }
        if result.source_conflicts:
            first = result.source_conflicts[0]
            answer["warning"] = (
                f"{len(result.source_conflicts)} wallet(s) were loaded from another source than "
                f"TRADE_SOURCE={s.trade_source} and are not dispatched: rows from two sources have "
                f"different keys. First: {first[0]} ({first[1]})."
            )
        return answer

    @app.post("/dead-letters/replay")
    async def post_replay(body: ReplayRequest) -> dict[str, Any]:
        def call() -> Any:
            d = deps()
            return replay_dead_letters(
                dead_letters=d.dead_letters,
                publisher=d.publisher,
                warehouse=d.warehouse,
                clock=d.clock,
                lease_seconds=app.state.settings.lease_seconds,
                error_class=body.error_class,
                wallet=body.wallet,
                max_letters=body.max,
                dry_run=body.dry_run,
            )

        result = await run_in_threadpool(call)
        return {
            "dry_run": body.dry_run,
            "matched": result.matched,
            "replayed": 0 if body.dry_run else len(result.replayed),
            "would_replay": len(result.replayed) if body.dry_run else 0,
            "letters": [
                {"wallet": x.wallet, "topic": x.topic, "error_class": x.error_class, "error": x.error}
                for x in result.replayed[:100]
            ],
        }

    @app.get("/status")
    async def get_status() -> dict[str, Any]:
        def collect() -> dict[str, Any]:
            d = deps()
            status = d.warehouse.status(d.clock.now())
            return {
                "wallets": status.wallets_total,
                "by_status": status.by_status,
                "trades": status.trades,
                "in_flight": status.in_flight,
                "dead_letters": status.dead_letters,
                "parked": status.parked,
                "newest_load": status.newest_load.isoformat() if status.newest_load else None,
            }

        return await run_in_threadpool(collect)

    return app


def main() -> None:  # pragma: no cover - the container entry point
    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
