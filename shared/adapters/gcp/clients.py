"""What the Google adapters share: short retry policies and one mapping of client errors to the taxonomy.

The clients' defaults retry for up to 600 s (and an emulator's 500 makes them do exactly that), far
past a push's ack deadline; the adapters pass these bounded policies instead and let Pub/Sub's
redelivery be the long retry (design rule 8).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import exceptions as auth_exc

from shared.core.errors import PipelineError, SystemicError, TransientError

# Reasons BigQuery/GCS send with 403 that mean "slow down", not "you may not".
_RATE_REASONS = {"rateLimitExceeded", "backendError", "userRateLimitExceeded"}


def short_retry(deadline: float, predicate: Any = None) -> gretry.Retry:
    """Exponential back-off from 0.25 s to 4 s, giving up after `deadline` seconds."""
    return gretry.Retry(
        predicate=predicate or gretry.if_transient_error, initial=0.25, maximum=4.0, multiplier=2.0, timeout=deadline
    )


def reasons(exc: BaseException) -> set[str]:
    errors = getattr(exc, "errors", None) or []
    return {e.get("reason", "") for e in errors if isinstance(e, dict)}


def translate(
    exc: BaseException, doing: str, systemic: type[SystemicError] = SystemicError, **fields: Any
) -> PipelineError | None:
    """The taxonomy error for a client failure, or None when the caller must decide (4xx about the input)."""
    if isinstance(exc, PipelineError):
        return exc
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if not isinstance(exc, gexc.GoogleAPICallError) and isinstance(status, int):
        # Resumable uploads raise InvalidResponse(response, ...) rather than the API's exception types.
        return translate(gexc.from_http_status(status, str(exc)), doing, systemic, **fields)
    what = f"{doing}: {type(exc).__name__}: {exc}"
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        if reasons(exc) & _RATE_REASONS:
            return TransientError(what, **fields)
        return systemic(what, **fields)
    if isinstance(exc, auth_exc.RefreshError | auth_exc.DefaultCredentialsError):
        return systemic(what, **fields)
    if isinstance(
        exc,
        gexc.ServerError
        | gexc.TooManyRequests
        | gexc.RetryError
        | requests.ConnectionError
        | requests.Timeout
        | auth_exc.TransportError
        | concurrent.futures.TimeoutError
        | TimeoutError
        | ConnectionError,
    ):
        return TransientError(what, **fields)
    return None
