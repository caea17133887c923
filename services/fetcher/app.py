"""POST / for the `wallets` push subscription (design rules 4, 7, 8, 12); callers: ALLOWED_PUSH_EMAILS
(and GET /status: ALLOWED_OPERATOR_EMAILS; shared/web/auth.py).

204  the part file is durable and its FileReady (and continuation) published
204  a permanent failure for this wallet: dead-lettered with the reason first
400  not a push envelope
503  transient (Pub/Sub backs off) or systemic (ERROR log; the message waits for an operator)
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from shared import bootstrap, delivery
from shared.bootstrap import FetcherDeps, Overrides
from shared.core.messages import LookupTask, decode_task
from shared.delivery import Received, Verdict
from shared.handlers.fetch import FetchBudget, fetch
from shared.handlers.lookups import fetch_lookup
from shared.logs import setup_json_logging
from shared.ports.publisher import Topic
from shared.settings import FetcherSettings
from shared.web import app as webapp
from shared.web.auth import Callers
from shared.web.push import parse_push

ROUTES = {("POST", "/"): Callers.PUSH, ("GET", "/status"): Callers.OPERATORS}


def create_app(settings: FetcherSettings | None = None, overrides: Overrides | None = None) -> FastAPI:
    """`overrides` replace adapters (tests); everything else is built from settings in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or FetcherSettings()
        if overrides is None:
            setup_json_logging(s.log_level, s.gcp_project)
        o = overrides or Overrides()
        webapp.open_gate(app, s, o.certificates)
        app.state.settings = s
        app.state.deps = bootstrap.fetcher(s, o)
        app.state.budget = bootstrap.fetch_budget(s)
        yield
        app.state.deps.source.close()

    app = FastAPI(title="fetcher", lifespan=lifespan)
    webapp.install(app, ROUTES)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        """This instance's view of the trade API: the breaker (open: every wallet failed, pushes get 503
        at once without a request until a probe succeeds), the requests it sent, and the pace it keeps
        (its share of the key when several instances share it; null: unlimited). On the event loop:
        it reads counters only, and must answer while every worker thread waits on the limiter."""
        deps: FetcherDeps = app.state.deps
        breaker = deps.source.breaker_state()
        stats = deps.source.stats
        pace = deps.source.pace_per_second()
        return {
            "source": deps.source.name,
            "breaker": {
                "open": breaker.open,
                "failures_in_a_row": breaker.failures,
                "wallets": breaker.wallets,
                "cause": breaker.cause,
            },
            "requests": stats.requests,
            "rate_limited": stats.rate_limited,
            "retries": stats.retries,
            "pace_per_second": round(pace, 2) if math.isfinite(pace) else None,
        }

    @app.post("/", status_code=204)
    async def receive(request: Request) -> Response:
        push = parse_push(await request.body())
        webapp.log_push(push)
        message = Received(Topic.WALLETS, push.data, push.attributes, push.delivery_attempt or 1)
        return webapp.respond(await run_in_threadpool(_handle, app.state.deps, app.state.budget, message))

    return app


def _handle(deps: FetcherDeps, budget: FetchBudget, message: Received) -> Verdict:
    def work() -> None:
        task = decode_task(message.data)
        if isinstance(task, LookupTask):
            webapp.set_log_fields(run_id=task.run_id)
            fetch_lookup(task, source=deps.markets, store=deps.store, publisher=deps.publisher, clock=deps.clock)
            return
        webapp.set_log_fields(wallet=task.wallet, run_id=task.run_id, part=task.part)
        fetch(task, source=deps.source, store=deps.store, publisher=deps.publisher, clock=deps.clock, budget=budget)

    verdict = delivery.run(work)
    delivery.settle(verdict, message, deps.dead_letters)
    return verdict


def main() -> None:  # pragma: no cover - the container entry point
    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
