"""POST / for the `files` push subscription.

204  the batch holding this file committed (rows, parts and checkpoints in one transaction)
204  this file can never load (missing, unreadable): dead-lettered with the reason first
400  not a push envelope
503  the batch failed (transient, or systemic with an ERROR log): Pub/Sub redelivers
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from services.loader.batcher import Batcher
from shared import webapp
from shared.clock import SystemClock
from shared.errors import InvalidMessage
from shared.handlers.load import load
from shared.logs import setup_json_logging
from shared.messages import DeadLetter, FileReady, decode
from shared.publisher import FILES
from shared.push import parse_push
from shared.settings import LoaderSettings


def create_app(settings: LoaderSettings | None = None, **overrides: Any) -> FastAPI:
    """`overrides` replace adapters (warehouse, dead_letters, clock) — for tests."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or LoaderSettings()
        if "warehouse" not in overrides:
            setup_json_logging(s.log_level, s.gcp_project)
        from shared import wiring

        app.state.settings = s
        app.state.warehouse = overrides.get("warehouse") or wiring.build_warehouse(s)
        app.state.warehouse.ensure_schema()
        if "dead_letters" in overrides:
            app.state.dead_letters = overrides["dead_letters"]
        else:
            app.state.dead_letters = wiring.build_dead_letters(s, wiring.build_publisher(s))
        clock = overrides.get("clock") or SystemClock()
        app.state.batcher = Batcher(
            lambda batch: load(batch, warehouse=app.state.warehouse, clock=clock),
            s.loader_flush_files,
            s.loader_flush_seconds,
        )
        app.state.batcher.start()
        yield
        await app.state.batcher.stop()

    app = FastAPI(title="loader", lifespan=lifespan)
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
        try:
            ready = decode(FileReady, push.data)
        except InvalidMessage as exc:
            _dead_letter(app, push.data, push.attributes, exc)
            return Response(status_code=204)
        webapp.set_log_fields(wallet=ready.wallet, run_id=ready.run_id, part=ready.part, uri=ready.uri)
        result = await app.state.batcher.submit(ready)
        if ready.uri in result.failed:
            _dead_letter(app, push.data, push.attributes, result.failed[ready.uri])
        return Response(status_code=204)

    return app


def _dead_letter(app: FastAPI, data: bytes, attributes: dict[str, str], exc: Any) -> None:
    app.state.dead_letters.put(
        DeadLetter(
            topic=FILES,
            data=data.decode("utf-8", errors="replace"),
            attributes=attributes,
            error_class=exc.error_class,
            error=exc.message,
            wallet=attributes.get("wallet"),
        )
    )
    webapp.log.warning("dead-lettered: %s", exc)


def main() -> None:  # pragma: no cover - the container entry point
    import os

    import uvicorn

    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
