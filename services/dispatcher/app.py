"""The dispatcher's HTTP interface, and who may call each route (shared/web/auth.py).

POST /dispatch              the scheduler    {run_id?, mode: scheduled|backfill|sync, max_in_flight?}
POST /dead-letters/replay   operators        {error_class?, wallet?, max, dry_run} -> what it replayed
POST /verify                operators        {after?, max, api, requeue} -> every complete checkpoint proven
GET  /status                operators        wallets by status, trades, in flight, dead letters, newest load
GET  /healthz               anyone

Modes (shared/handlers/dispatch.py, `sync_before_for`): `scheduled` (the default, what the Scheduler
sends every 30 minutes) dispatches new and unfinished wallets and, once the day's SYNC_HOUR_UTC has
passed, syncs the complete wallets not walked since; `backfill` only new and unfinished wallets;
`sync` also every complete wallet not walked since the call (a sync now).

`max_in_flight` may lower this call's cap, never raise it: above MAX_IN_FLIGHT it is a 422 naming the
setting (a silent cap would let a caller believe it dispatched more than it did).

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
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared import bootstrap
from shared.bootstrap import DispatcherDeps, Overrides
from shared.core.messages import RunId
from shared.handlers.dispatch import DispatchResult, dispatch, sync_before_for, sync_boundary
from shared.handlers.lookups import dispatch_lookups
from shared.handlers.replay import collect_dead_letters, replay_dead_letters
from shared.handlers.verify import Requeue, VerifyReport, requeue_run_id, verify
from shared.logs import setup_json_logging
from shared.settings import DispatcherSettings
from shared.web import app as webapp
from shared.web.auth import Callers

ROUTES = {
    ("POST", "/dispatch"): Callers.SCHEDULER,
    ("POST", "/dead-letters/replay"): Callers.OPERATORS,
    ("POST", "/verify"): Callers.OPERATORS,
    ("GET", "/status"): Callers.OPERATORS,
}


class DispatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: RunId | None = None
    mode: Literal["scheduled", "backfill", "sync"] = "scheduled"
    max_in_flight: int | None = Field(None, ge=1)  # at most MAX_IN_FLIGHT, checked in the route
    lookups: bool = True  # also schedule the markets and events the trades name (when LOOKUPS is on)


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_class: str | None = None
    wallet: str | None = None
    max: int = Field(100, ge=1, le=10_000)
    dry_run: bool = False


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(None, max_length=200)  # resume after this wallet (a previous answer's next_after)
    max: int = Field(10_000, ge=1, le=1_000_000)  # complete wallets this call checks at most
    api: bool = True  # compare with the API's own counts too (when the dispatcher holds a key)
    requeue: bool = False  # re-fetch the mismatched wallets a re-fetch repairs, in a new run


# One call stops checking after this long, inside the dispatcher's request timeout (Terraform's
# dispatch_attempt_deadline_seconds, 320 s by default); its answer's next_after resumes it.
VERIFY_BUDGET_SECONDS = 240.0
LISTED = 1000  # mismatches and requeued wallets listed in an answer (all are counted)


def create_app(settings: DispatcherSettings | None = None, overrides: Overrides | None = None) -> FastAPI:
    """`overrides` replace adapters (tests); everything else is built from settings in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or DispatcherSettings()
        if overrides is None:
            setup_json_logging(s.log_level, s.gcp_project)
        o = overrides or Overrides()
        webapp.open_gate(app, s, o.certificates)
        deps = bootstrap.dispatcher(s, o)
        deps.warehouse.check_schema()
        app.state.settings, app.state.deps = s, deps
        yield
        if deps.counter is not None:
            deps.counter.close()

    app = FastAPI(title="dispatcher", lifespan=lifespan)
    webapp.install(app, ROUTES)

    def deps() -> DispatcherDeps:
        d: DispatcherDeps = app.state.deps
        collect_dead_letters(d.inbox, d.dead_letters)
        return d

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/dispatch", response_model=None)
    async def post_dispatch(body: DispatchRequest | None = None) -> dict[str, Any] | JSONResponse:
        body = body or DispatchRequest()
        s: DispatcherSettings = app.state.settings
        if body.max_in_flight is not None and body.max_in_flight > s.max_in_flight:
            return webapp.error_response(
                "bad_request", f"max_in_flight {body.max_in_flight} is above MAX_IN_FLIGHT={s.max_in_flight}", 422
            )
        run_id = body.run_id or "run-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")

        def call() -> DispatchResult:
            d = deps()
            sync_before = sync_before_for(body.mode, d.clock.now(), daily=s.sync_daily, hour_utc=s.sync_hour_utc)
            result = dispatch(
                warehouse=d.warehouse,
                publisher=d.publisher,
                dead_letters=d.dead_letters,
                clock=d.clock,
                run_id=run_id,
                source=s.trade_source,
                max_in_flight=body.max_in_flight or s.max_in_flight,
                lease_seconds=s.lease_seconds,
                sync_before=sync_before,
                lookback_seconds=s.sync_lookback_seconds,
            )
            policy = bootstrap.lookup_policy(s)
            if body.lookups and policy is not None:
                lookups = dispatch_lookups(
                    warehouse=d.warehouse,
                    publisher=d.publisher,
                    clock=d.clock,
                    run_id=run_id,
                    source=s.trade_source,
                    policy=policy,
                    sync_before=sync_before,
                )
                result.lookups = len(lookups)
            return result

        result = await run_in_threadpool(call)
        answer: dict[str, Any] = {
            "run_id": run_id,
            "mode": body.mode,
            "published": len(result.published),
            "dead_lettered": len(result.dead_lettered),
            "in_flight_before": result.in_flight_before,
            "wallets": [t.wallet for t in result.published[:100]],
            "refused_source_switch": len(result.source_conflicts),
            "lookups": result.lookups,
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

    @app.post("/verify")
    async def post_verify(body: VerifyRequest | None = None) -> dict[str, Any]:
        """Every complete checkpoint against the warehouse's rows and the API's count, a bounded stretch
        per call; with requeue, the mismatched wallets are published for a new run (leases claimed
        first). Reads the loader's tables, writes only leases (design rule 9)."""
        body = body or VerifyRequest()
        s: DispatcherSettings = app.state.settings

        def call() -> VerifyReport:
            d = deps()
            counter = d.counter if body.api else None
            unasked = "n/a: not asked" if not body.api else None
            if body.api and counter is None and s.trade_source == "dome":
                unasked = "n/a: the dispatcher holds no API key (Terraform: verify_api_counts)"
            plan = Requeue(d.publisher, requeue_run_id(d.clock.now()), s.lease_seconds) if body.requeue else None
            return verify(
                warehouse=d.warehouse,
                counter=counter,
                source=s.trade_source,
                clock=d.clock,
                after=body.after,
                max_wallets=body.max,
                budget_seconds=VERIFY_BUDGET_SECONDS,
                requeue=plan,
                unasked=unasked,
            )

        report = await run_in_threadpool(call)
        return {**report.as_json(LISTED), "verified": report.verified}

    @app.get("/status")
    async def get_status() -> dict[str, Any]:
        def collect() -> dict[str, Any]:
            d = deps()
            s: DispatcherSettings = app.state.settings
            now = d.clock.now()
            boundary = sync_boundary(now, s.sync_hour_utc) if s.sync_daily else None
            status = d.warehouse.status(now, sync_before=boundary)
            return {
                "wallets": status.wallets_total,
                "by_status": status.by_status,
                "trades": status.trades,
                "in_flight": status.in_flight,
                "dead_letters": status.dead_letters,
                "parked": status.parked,
                "newest_load": status.newest_load.isoformat() if status.newest_load else None,
                "sync": {
                    "daily_at_utc": f"{s.sync_hour_utc:02d}:00" if s.sync_daily else None,
                    "oldest_sync": _iso(status.oldest_sync),
                    "oldest_sync_age_seconds": _age(now, status.oldest_sync),
                    "due": status.sync_due,  # complete, not walked since today's sync hour
                    "overdue": status.sync_overdue,  # not walked since the day before: a missed day
                },
                "markets": {
                    "condition_ids": status.condition_ids,
                    "markets": status.markets,
                    "unresolved": status.unresolved_markets,
                    "not_found": status.markets_not_found,
                    "oldest_unresolved_fetch": _iso(status.oldest_unresolved_fetch),
                    "oldest_unresolved_age_seconds": _age(now, status.oldest_unresolved_fetch),
                    "events": status.events,
                    "events_not_found": status.events_not_found,
                },
            }

        return await run_in_threadpool(collect)

    return app


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _age(now: datetime, at: datetime | None) -> int | None:
    return None if at is None else int((now - at).total_seconds())


def main() -> None:  # pragma: no cover - the container entry point
    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
