"""What the three FastAPI services share: the delivery verdict as an HTTP answer, one error handler
for the taxonomy, request-scoped log fields (trace, message id, delivery attempt), and the caller check
of every route (shared/web/auth.py), run in a worker thread before the route.

    a caller the route does not admit  401 (no valid token), 403 (another caller), 503 (not configured)
    verdict (shared/delivery.py)       ACK, DEAD_LETTER -> 204; RETRY, HALT -> 503 (Pub/Sub backs off)
    BadEnvelope                        400 (the sender is broken; Pub/Sub will retry and dead-letter it)
    a PipelineError from a route       by its kind: transient/systemic 503, permanent 422
    anything else                      500, logged once with its stack, nothing leaked in the body
Every error body is redacted (shared/core/errors.py): no key or bearer token is ever answered back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from shared.core.errors import PermanentError, PipelineError, SystemicError, TransientError, redact
from shared.delivery import Verdict
from shared.logs import request_context
from shared.settings import CloudSettings
from shared.web.auth import OPEN_PATHS, Certificates, Gate, Refused, Routes
from shared.web.push import BadEnvelope, Push

log = logging.getLogger("service")
REFUSALS = {401: "unauthorized", 403: "forbidden", 503: "unavailable"}


def install(app: FastAPI, routes: Routes) -> None:
    """The shared middleware and error handlers; `routes` names who may call each route (the gate itself
    is made from the settings in the lifespan, `open_gate`: until then every call but /healthz is a 503)."""
    app.state.routes = routes

    @app.middleware("http")
    async def context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        trace = (request.headers.get("x-cloud-trace-context") or "").split("/")[0] or None
        token = request_context.set({"trace": trace})
        try:
            if request.url.path not in OPEN_PATHS:
                refused = await _admit(request)
                if refused is not None:
                    log.warning("refused %s %s: %s", request.method, request.url.path, refused.reason)
                    headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
                    body = {"error": REFUSALS.get(refused.status, "refused"), "message": refused.reason}
                    return JSONResponse(body, status_code=refused.status, headers=headers)
            return await call_next(request)
        finally:
            request_context.reset(token)

    @app.exception_handler(BadEnvelope)
    async def bad_envelope(_: Request, exc: BadEnvelope) -> JSONResponse:
        log.warning("bad push body: %s", exc)
        return error_response("bad_request", str(exc), 400)

    @app.exception_handler(PipelineError)
    async def pipeline_error(_: Request, exc: PipelineError) -> JSONResponse:
        if isinstance(exc, SystemicError):
            log.error("systemic failure: %s", exc, extra=exc.fields)
            status = 503
        elif isinstance(exc, TransientError):
            log.warning("transient failure, will be retried: %s", exc, extra=exc.fields)
            status = 503
        elif isinstance(exc, PermanentError):
            log.warning("rejected: %s", exc, extra=exc.fields)
            status = 422
        else:
            log.error("failure: %s", exc, extra=exc.fields)
            status = 500
        return error_response(exc.error_class, exc.message, status)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return error_response("internal", "internal error (see logs)", 500)


async def _admit(request: Request) -> Refused | None:
    gate: Gate | None = getattr(request.app.state, "gate", None)
    if gate is None:
        return Refused(503, "the service has not started")
    if not gate.enforced:
        return None
    # Blocking (a certificate fetch is an HTTP request): never on the event loop the routes share.
    return await run_in_threadpool(gate.check, request.method, request.url.path, request.headers.get("authorization"))


def open_gate(app: FastAPI, settings: CloudSettings, certificates: Certificates | None = None) -> Gate:
    """The caller check of `app` from its settings (in the lifespan; `certificates`: Google's unless a test
    gives others). What it cannot admit is logged now, so a misconfigured service says why it refuses."""
    gate = Gate(settings, app.state.routes, certificates)
    for problem in gate.problems():
        log.error("refusing calls: %s", problem)
    if not gate.enforced:
        log.info("no OIDC_AUDIENCE and not on Cloud Run: callers are not authenticated (local use only)")
    app.state.gate = gate
    return gate


def error_response(error: str, message: str, status: int) -> JSONResponse:
    """An error body; its text redacted whatever produced it."""
    return JSONResponse({"error": error, "message": redact(message)}, status_code=status)


def respond(verdict: Verdict) -> Response:
    """A push's answer: 2xx only once the message is settled for good (design rule 4)."""
    if verdict.acked:
        return Response(status_code=204)
    error = verdict.error
    return error_response(getattr(error, "error_class", type(error).__name__), getattr(error, "message", "retry"), 503)


def log_push(push: Push) -> None:
    set_log_fields(
        message_id=push.message_id,
        delivery_attempt=push.delivery_attempt,
        wallet=push.attributes.get("wallet"),
        run_id=push.attributes.get("run_id"),
    )


def set_log_fields(**fields: Any) -> None:
    ctx = dict(request_context.get() or {})
    ctx.update({k: v for k, v in fields.items() if v is not None})
    request_context.set(ctx)
