"""POST / for the `files` push subscription; callers: ALLOWED_PUSH_EMAILS (shared/web/auth.py).

204  the batch holding this file committed (rows, parts and checkpoints in one transaction)
204  this file can never load (missing, unreadable, not one of the fetcher's parts): dead-lettered first
400  not a push envelope
503  the batch failed (transient, or systemic with an ERROR log): Pub/Sub redelivers
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from services.loader.batcher import Batcher
from shared import bootstrap, delivery
from shared.bootstrap import Overrides
from shared.core.messages import FileReady, decode_file
from shared.delivery import Received
from shared.handlers.load import load
from shared.logs import setup_json_logging
from shared.ports.publisher import Topic
from shared.settings import LoaderSettings
from shared.web import app as webapp
from shared.web.auth import Callers
from shared.web.push import parse_push

ROUTES = {("POST", "/"): Callers.PUSH}


def create_app(settings: LoaderSettings | None = None, overrides: Overrides | None = None) -> FastAPI:
    """`overrides` replace adapters (tests); everything else is built from settings in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or LoaderSettings()
        if overrides is None:
            setup_json_logging(s.log_level, s.gcp_project)
        o = overrides or Overrides()
        webapp.open_gate(app, s, o.certificates)
        deps = bootstrap.loader(s, o)
        deps.warehouse.check_schema()
        app.state.settings, app.state.deps = s, deps
        app.state.batcher = Batcher(
            lambda batch: load(batch, warehouse=deps.warehouse, store=deps.store, clock=deps.clock),
            s.loader_flush_files,
            s.loader_flush_seconds,
        )
        app.state.batcher.start()
        yield
        await app.state.batcher.stop()

    app = FastAPI(title="loader", lifespan=lifespan)
    webapp.install(app, ROUTES)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/", status_code=204)
    async def receive(request: Request) -> Response:
        push = parse_push(await request.body())
        webapp.log_push(push)
        message = Received(Topic.FILES, push.data, push.attributes, push.delivery_attempt or 1)
        try:
            ready = decode_file(push.data)
            if isinstance(ready, FileReady):
                webapp.set_log_fields(wallet=ready.wallet, run_id=ready.run_id, part=ready.part, uri=ready.uri)
            result = await app.state.batcher.submit(ready)
            verdict = delivery.judge(result.error_of(ready))
        except Exception as exc:
            verdict = delivery.judge(exc)
        await run_in_threadpool(delivery.settle, verdict, message, app.state.deps.dead_letters)
        return webapp.respond(verdict)

    return app


def main() -> None:  # pragma: no cover - the container entry point
    uvicorn.run(create_app(), host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
