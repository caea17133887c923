"""The path one request takes through the simulator, shared by the endpoints of each API family.

Dome (/orders, /markets, /events; `dome_answer`): count it -> API key (401) -> CDN block fault (HTML)
-> burst fault (429) -> the key's rate-limit windows, ONE budget per key across the three endpoints
(429 with Retry-After and x-ratelimit-*) -> latency and slow fault -> 5xx fault -> 503 fault
(Retry-After) -> `fail_wallets` (/orders) -> parameter checks and the page (400/401/500) ->
missing-field, drop or truncate faults -> 200.

Gamma (/gamma/markets/keyset, /gamma/events; `gamma_answer`): the same without an API key, with the
endpoint family's per-client window (by client address) and `{"error"}` bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from emulators.dome.gamma import GammaError
from emulators.dome.orders import ApiError
from emulators.dome.ratelimit import SlidingWindows
from emulators.dome.responses import (
    UNAUTHORIZED,
    cdn_block_page,
    dropped,
    dumps,
    json_response,
    missing_field,
    server_error,
    too_many_requests,
    truncated,
)
from emulators.dome.state import Roll, SimState


class Counters(Protocol):
    rows_served: int

    def count_fault(self, kind: str) -> None: ...


def bearer(header: str | None) -> str | None:
    scheme, _, key = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def latency(sim: SimState, roll: Roll, counters: Counters) -> None:
    delay = sim.faults.latency_ms / 1000 * roll.jitter
    if roll.slow:
        counters.count_fault("slow")
        delay += sim.faults.slow_seconds
    if delay > 0:
        await sim.config.sleep(delay)


def body_faults(
    roll: Roll, counters: Counters, body: Any, rows_key: str | None, required: str, headers: dict[str, str]
) -> Response:
    """The 200, or what the missing-field, drop and truncate faults make of it; `rows_key` None: the body
    is a bare array of rows."""
    if roll.missing_field:
        counters.count_fault("missing_field")
        if rows_key is None:
            body = [{k: v for k, v in row.items() if k != required} if i == 0 else row for i, row in enumerate(body)]
        else:
            body = missing_field(body, rows_key, required)
    payload = dumps(body)
    if roll.drop:
        counters.count_fault("drop")
        return dropped(payload)
    if roll.truncated:
        counters.count_fault("truncated")
        return truncated(payload)
    counters.rows_served += len(body if rows_key is None else body[rows_key])
    return Response(payload, media_type="application/json", headers=headers)


async def dome_answer(
    sim: SimState,
    request: Request,
    counters: Counters,
    page: Callable[[], dict[str, Any]],
    rows_key: str,
    required: str,
    wallet: str | None = None,
) -> Response:
    config, faults = sim.config, sim.faults
    key = bearer(request.headers.get("authorization"))
    if key is None or (config.api_keys is not None and key not in config.api_keys):
        return json_response(401, UNAUTHORIZED)
    roll = sim.roll()
    if roll.html:
        counters.count_fault("html")
        return cdn_block_page(faults.html_status, "api.domeapi.io", sim.trace_id()[:16])
    if roll.burst_429:
        counters.count_fault("burst_429")
        return too_many_requests("Rate limit exceeded, please retry shortly", {"Retry-After": "1"})
    verdict = sim.limiter.admit(key)
    limit_headers = verdict.headers(config.wall_clock()) if verdict and config.ratelimit_headers else {}
    if verdict and not verdict.allowed:
        return too_many_requests(
            f"Rate limit of {verdict.limit} requests exceeded for this API key, retry after {verdict.retry_after} s",
            limit_headers or {"Retry-After": str(verdict.retry_after)},
        )
    await latency(sim, roll, counters)
    if roll.error_5xx:
        counters.count_fault("error_5xx")
        return server_error(roll.pick)
    if roll.unavailable:
        counters.count_fault("unavailable")
        body = {"error": "Service Unavailable", "message": "The service is temporarily unavailable, please retry"}
        return json_response(503, body, {"Retry-After": str(faults.unavailable_retry_after)})
    if wallet in faults.fail_wallets:
        counters.count_fault("fail_wallet")
        status = faults.fail_wallets[wallet]
        return json_response(status, {"error": phrase(status), "message": f"Simulated failure for wallet {wallet}"})
    try:
        with sim.lock:
            body = page()
    except ApiError as exc:
        return json_response(exc.status, exc.body, limit_headers)
    return body_faults(roll, counters, body, rows_key, required, limit_headers)


async def gamma_answer(
    sim: SimState,
    request: Request,
    counters: Counters,
    limiter: SlidingWindows,
    page: Callable[[], Any],
    rows_key: str | None,
    required: str,
) -> Response:
    faults = sim.faults
    roll = sim.roll()
    if roll.html:
        counters.count_fault("html")
        return cdn_block_page(faults.html_status, "gamma-api.polymarket.com", sim.trace_id()[:16])
    if roll.burst_429:
        counters.count_fault("burst_429")
        return json_response(429, {"error": "rate limited, retry after 1 s"}, {"Retry-After": "1"})
    verdict = limiter.admit(request.client.host if request.client else "unknown")
    if verdict and not verdict.allowed:
        message = f"rate limited: {verdict.limit} requests per 10 s, retry after {verdict.retry_after} s"
        return json_response(429, {"error": message}, {"Retry-After": str(verdict.retry_after)})
    await latency(sim, roll, counters)
    if roll.error_5xx:
        counters.count_fault("error_5xx")
        return server_error(roll.pick)
    if roll.unavailable:
        counters.count_fault("unavailable")
        headers = {"Retry-After": str(faults.unavailable_retry_after)}
        return json_response(503, {"error": "service unavailable, retry later"}, headers)
    try:
        with sim.lock:
            body = page()
    except GammaError as exc:
        return json_response(exc.status, exc.body())
    return body_faults(roll, counters, body, rows_key, required, {})
