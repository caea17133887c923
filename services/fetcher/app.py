"""POST / for the `wallets` push subscription (DESIGN rules 4, 7, 8, 12).

204  the part file is durable and its FileReady (and continuation) published
204  a permanent failure for this wallet: dead-lettered with the reason first
400  not a push envelope
503  transient (Pub/Sub backs off) or systemic (ERROR log; the message waits for an operator)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from shared import webapp
from shared.clock import SystemClock
from shared.errors import PermanentError
from shared.handlers.fetch import FetchBudget, fetch
from shared.logs import setup_json_logging
from shared.messages import DeadLetter, WalletTask, decode
from shared.publisher import WALLETS
from shared.push import parse_push
from shared.settings import FetcherSettings
from shared.sources import make_source


def create_app(settings: FetcherSettings | None = None, **overrides: Any) -> FastAPI:
    """`overrides` replace adapters (publisher, store, source, dead_letters, clock) — for tests."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or FetcherSettings()
        if "publisher" not in overrides:
            setup_json_logging(s.log_level, s.gcp_project)
        from shared import wiring

        publisher = overrides.get("publisher") or wiring.build_publisher(s)
        app.state.settings = s
        app.state.publisher = publisher
        app.state.store = overrides.get("store") or wiring.build_store(s)
        app.state.source = overrides.get("source") or make_source(s)
        app.state.dead_letters = overrides.get("dead_letters") or wiring.build_dead_letters(s, publisher)
        app.state.clock = overrides.get("clock") or SystemClock()
        app.state.budget = FetchBudget(seconds=s.fetch_budget_seconds, max_pages=s.fetch_max_pages)
        yield
        app.state.source.close()

    app = FastAPI(title="fetcher", lifespan=lifespan)
    webapp.install(app, lambda: getattr(getattr(app.state, "settings", None), "oidc_audience", None))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/", status_code=204)
    async def receive(request: Request) -> Response:
        push = parse_push(await request.body())
        webapp.set_log_fields(
            message_id=push.message_id,
            delivery_attempt=push.delivery_attempt,
            wallet=push.attributes.get("wallet"),
            run_id=push.attributes.get("run_id"),
        )
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(_handle, app, push.data, push.attributes)
        return Response(status_code=204)

    return app


def _handle(app: FastAPI, data: bytes, attributes: dict[str, str]) -> None:
    state = app.state
    try:
        task = decode(WalletTask, data)
        webapp.set_log_fields(wallet=task.wallet, run_id=task.run_id, part=task.part)
        fetch(
            task,
            source=state.source,
            store=state.store,
            publisher=state.publisher,
            clock=state.clock,
            budget=state.budget,
        )
    except PermanentError as exc:
        # Dead-letter with the reason, then ack: this wallet can never succeed as it is.
        state.dead_letters.put(
            DeadLetter(
                topic=WALLETS,
                data=data.decode("utf-8", errors="replace"),
                attributes=attributes,
                error_class=exc.error_class,
                error=exc.message,
                wallet=attributes.get("wallet") or exc.fields.get("wallet"),
            )
        )
        webapp.log.warning("dead-lettered: %s", exc)


def main() -> None:  # pragma: no cover - the container entry point
    import os

    import uvicorn

    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
