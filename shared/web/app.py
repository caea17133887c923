"""What the three FastAPI services share: the delivery verdict as an HTTP answer, one error handler
for the taxonomy, request-scoped log fields (trace, message id, delivery attempt), and optional OIDC
verification of Pub/Sub push and Cloud Scheduler calls.

    verdict (shared/delivery.py)   ACK, DEAD_LETTER -> 204; RETRY, HALT -> 503 (Pub/Sub backs off)
    BadEnvelope                    400 (the sender is broken; Pub/Sub will retry and dead-letter it)
    a PipelineError from a route   by its kind: transient/systemic 503, permanent 422
    anything else                  500, logged once with its stack, nothing leaked in the body
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.auth.transport import requests as google_requests
from google.oauth2 import id_token

from shared.core.errors import PermanentError, PipelineError, SystemicError, TransientError
from shared.delivery import Verdict
from shared.logs import request_context
from shared.web.push import BadEnvelope, Push

log = logging.getLogger("service")


def install(app: FastAPI, audience_of: Callable[[], str | None]) -> None:
    @app.middleware("http")
    async def context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        trace = (request.headers.get("x-cloud-trace-context") or "").split("/")[0] or None
        token = request_context.set({"trace": trace})
        try:
            audience = audience_of()
            if audience and request.url.path not in ("/healthz",):
                problem = verify_oidc(request.headers.get("authorization"), audience)
                if problem:
                    log.warning("rejected call: %s", problem)
                    return JSONResponse({"error": "unauthorized", "message": problem}, status_code=401)
            return await call_next(request)
        finally:
            request_context.reset(token)

    @app.exception_handler(BadEnvelope)
    async def bad_envelope(_: Request, exc: BadEnvelope) -> JSONResponse:
        log.warning("bad push body: %s", exc)
        return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)

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
        return JSONResponse({"error": exc.error_class, "message": exc.message}, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return JSONResponse({"error": "internal", "message": "internal error (see logs)"}, status_code=500)


def respond(verdict: Verdict) -> Response:
    """A push's answer: 2xx only once the message is settled for good (design rule 4)."""
    if verdict.acked:
        return Response(status_code=204)
    error = verdict.error
    body = {"error": getattr(error, "error_class", type(error).__name__), "message": getattr(error, "message", "retry")}
    return JSONResponse(body, status_code=503)


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


def verify_oidc(authorization: str | None, audience: str) -> str | None:
    """None when the bearer token is a Google-signed ID token for `audience`; else why not."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return "missing bearer token"
    try:
        id_token.verify_oauth2_token(authorization.split(" ", 1)[1], google_requests.Request(), audience)
    except Exception as exc:  # any verification failure is a rejection, never a 500
        return f"invalid token: {type(exc).__name__}"
    return None
