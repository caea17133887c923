"""The dispatcher's HTTP interface.

POST /dispatch              {run_id?, mode: backfill|incremental, max_in_flight?} -> what it published
POST /dead-letters/replay   {error_class?, wallet?, max, dry_run}                 -> what it replayed
GET  /status                wallets by status, trades, in flight, dead-letter depth, newest load
GET  /healthz
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared import webapp
from shared.clock import SystemClock
from shared.handlers.dispatch import dispatch
from shared.handlers.replay import replay_dead_letters
from shared.logs import setup_json_logging
from shared.messages import RunId
from shared.settings import DispatcherSettings


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


def create_app(settings: DispatcherSettings | None = None, **overrides: Any) -> FastAPI:
    """`overrides` replace adapters (warehouse, publisher, dead_letters, clock) — for tests."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or DispatcherSettings()
        if "warehouse" not in overrides:
            setup_json_logging(s.log_level, s.gcp_project)
        from shared import wiring

        app.state.settings = s
        app.state.warehouse = overrides.get("warehouse") or wiring.build_warehouse(s, s.traders_table)
        app.state.warehouse.ensure_schema()
        app.state.publisher = overrides.get("publisher") or wiring.build_publisher(s)
        app.state.dead_letters = overrides.get("dead_letters") or wiring.build_dead_letters(s, app.state.publisher)
        app.state.clock = overrides.get("clock") or SystemClock()
        yield

    app = FastAPI(title="dispatcher", lifespan=lifespan)
    webapp.install(app, lambda: getattr(getattr(app.state, "settings", None), "oidc_audience", None))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/dispatch")
    async def post_dispatch(body: DispatchRequest | None = None) -> dict[str, Any]:
        body = body or DispatchRequest()
        s, st = app.state.settings, app.state
        run_id = body.run_id or "run-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        result = await run_in_threadpool(
            dispatch,
            warehouse=st.warehouse,
            publisher=st.publisher,
            dead_letters=st.dead_letters,
            clock=st.clock,
            run_id=run_id,
            source=s.trade_source,
            mode=body.mode,
            max_in_flight=body.max_in_flight or s.max_in_flight,
            lease_seconds=s.lease_seconds,
        )
        return {
            "run_id": run_id,
            "mode": body.mode,
            "published": len(result.published),
            "dead_lettered": len(result.dead_lettered),
            "in_flight_before": result.in_flight_before,
            "wallets": [t.wallet for t in result.published[:100]],
            "refused_source_switch": len(result.source_conflicts),
            **(
                {
                    "warning": f"{len(result.source_conflicts)} wallet(s) were loaded from another source than "
                    f"TRADE_SOURCE={s.trade_source} and are not dispatched: rows from two sources have "
                    f"different keys. First: {result.source_conflicts[0][0]} ({result.source_conflicts[0][1]})."
                }
                if result.source_conflicts
                else {}
            ),
        }

    @app.post("/dead-letters/replay")
    async def post_replay(body: ReplayRequest) -> dict[str, Any]:
        st = app.state
        result = await run_in_threadpool(
            replay_dead_letters,
            dead_letters=st.dead_letters,
            publisher=st.publisher,
            warehouse=st.warehouse,
            clock=st.clock,
            error_class=body.error_class,
            wallet=body.wallet,
            max_letters=body.max,
            dry_run=body.dry_run,
            lease_seconds=st.settings.lease_seconds,
        )
        return {
            "dry_run": body.dry_run,
            "matched": result.matched,
            "replayed": 0 if body.dry_run else len(result.replayed),
            "would_replay": len(result.replayed) if body.dry_run else 0,
            "letters": [
                {"wallet": d.wallet, "topic": d.topic, "error_class": d.error_class, "error": d.error}
                for d in result.replayed[:100]
            ],
        }

    @app.get("/status")
    async def get_status() -> dict[str, Any]:
        st = app.state

        def collect() -> dict[str, Any]:
            status = st.warehouse.status(st.clock.now(), st.settings.lease_seconds)
            return {
                "wallets": status.wallets_total,
                "by_status": status.by_status,
                "trades": status.trades,
                "in_flight": status.in_flight,
                "dead_letters": st.dead_letters.depth(),
                "newest_load": status.newest_load.isoformat() if status.newest_load else None,
            }

        return await run_in_threadpool(collect)

    return app


def main() -> None:  # pragma: no cover - the container entry point
    import os

    import uvicorn

    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
