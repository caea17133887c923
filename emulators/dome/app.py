"""The trade API simulator as an ASGI app: Dome's `GET /v1/polymarket/orders`, Polymarket's Data API
`GET /v2/trades` (same universe), plus `/_sim/*` controls.

One request to /polymarket/orders goes: count it -> API key (401) -> CDN block fault (HTML) -> burst
fault (429) -> the key's rate-limit windows (429 with Retry-After and x-ratelimit-*) -> latency and
slow fault -> 5xx fault -> 503 fault (Retry-After) -> `fail_wallets` -> parameter checks (400/401) ->
the page -> missing-field, drop or truncate faults -> 200.

One request to /v2/trades goes the same way without an API key (the Data API has none), with the
per-client window (200 per 10 s by client address) instead of the key's, and v2 error bodies
`{error, code, retryable, trace_id}`; every JSON answer carries `x-trace-id` (the HTML pages do not).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.responses import Response, StreamingResponse

from emulators.dome.config import SimConfig
from emulators.dome.orders import ApiError, parse
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
from emulators.dome.trades import V2Error
from emulators.dome.trades import parse as parse_trades


def _bearer(header: str | None) -> str | None:
    scheme, _, key = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _answer(sim: SimState, request: Request, wallet: str | None) -> Response:
    config, stats = sim.config, sim.stats
    key = _bearer(request.headers.get("authorization"))
    if key is None or (config.api_keys is not None and key not in config.api_keys):
        return json_response(401, UNAUTHORIZED)
    roll = sim.roll()
    faults = sim.faults
    if roll.html:
        stats.count_fault("html")
        return cdn_block_page(faults.html_status, "api.domeapi.io", sim.trace_id()[:16])
    if roll.burst_429:
        stats.count_fault("burst_429")
        return too_many_requests("Rate limit exceeded, please retry shortly", {"Retry-After": "1"})
    verdict = sim.limiter.admit(key)
    limit_headers = verdict.headers(config.wall_clock()) if verdict else {}
    if verdict and not verdict.allowed:
        return too_many_requests(
            f"Rate limit of {verdict.limit} requests exceeded for this API key, retry after {verdict.retry_after} s",
            limit_headers,
        )
    await _latency(sim, roll)
    if roll.error_5xx:
        stats.count_fault("error_5xx")
        return server_error(roll.pick)
    if roll.unavailable:
        stats.count_fault("unavailable")
        body = {"error": "Service Unavailable", "message": "The service is temporarily unavailable, please retry"}
        return json_response(503, body, {"Retry-After": str(faults.unavailable_retry_after)})
    if wallet in faults.fail_wallets:
        stats.count_fault("fail_wallet")
        status = faults.fail_wallets[wallet]
        return json_response(status, {"error": _phrase(status), "message": f"Simulated failure for wallet {wallet}"})
    try:
        body = sim.book.page(parse(request.query_params))
    except ApiError as exc:
        return json_response(exc.status, exc.body, limit_headers)
    return _body_faults(sim, roll, body, "orders", "tx_hash", limit_headers)


async def _latency(sim: SimState, roll: Roll) -> None:
    delay = sim.faults.latency_ms / 1000 * roll.jitter
    if roll.slow:
        sim.stats.count_fault("slow")
        delay += sim.faults.slow_seconds
    if delay > 0:
        await sim.config.sleep(delay)


def _body_faults(
    sim: SimState, roll: Roll, body: dict[str, Any], rows_key: str, required: str, headers: dict[str, str]
) -> Response:
    """The 200, or what the missing-field, drop and truncate faults make of it."""
    stats = sim.stats
    if roll.missing_field:
        stats.count_fault("missing_field")
        body = missing_field(body, rows_key, required)
    payload = dumps(body)
    if roll.drop:
        stats.count_fault("drop")
        return dropped(payload)
    if roll.truncated:
        stats.count_fault("truncated")
        return truncated(payload)
    stats.rows_served += len(body[rows_key])
    return Response(payload, media_type="application/json", headers=headers)


async def _answer_trades(sim: SimState, request: Request, wallet: str | None, trace: str) -> Response:
    stats, faults = sim.stats, sim.faults

    def error(exc: V2Error, headers: dict[str, str] | None = None) -> Response:
        return json_response(exc.status, exc.body(trace), headers)

    roll = sim.roll()
    if roll.html:
        stats.count_fault("html")
        return cdn_block_page(faults.html_status, "data-api.polymarket.com", trace[:16])
    if roll.burst_429:
        stats.count_fault("burst_429")
        return error(V2Error(429, "rate limited, retry after 1 s"), {"Retry-After": "1"})
    verdict = sim.client_limiter.admit(request.client.host if request.client else "unknown")
    if verdict and not verdict.allowed:
        message = f"rate limited: {verdict.limit} requests per 10 s on /v2/trades, retry after {verdict.retry_after} s"
        return error(V2Error(429, message), {"Retry-After": str(verdict.retry_after)})
    await _latency(sim, roll)
    if roll.error_5xx:
        stats.count_fault("error_5xx")
        if roll.pick >= 0.5:
            return server_error(roll.pick)  # a proxy's HTML error page
        return error(V2Error((500, 502, 503)[int(roll.pick * 6) % 3], "internal error"))
    if roll.unavailable:
        stats.count_fault("unavailable")
        timeout = V2Error(503, "timed out waiting for a database connection", code="request_timeout")
        return error(timeout, {"Retry-After": str(faults.unavailable_retry_after)})
    if wallet in faults.fail_wallets:
        stats.count_fault("fail_wallet")
        return error(V2Error(faults.fail_wallets[wallet], f"Simulated failure for wallet {wallet}"))
    try:
        query = parse_trades(request.query_params, sim.config.wall_clock())
        if roll.short_page:
            stats.count_fault("short_page")
        body = sim.feed.page(query, short=roll.short_page)
    except V2Error as exc:
        return error(exc)
    return _body_faults(sim, roll, body, "data", "timestamp", {"cache-control": "public, max-age=300"})


def create_app(config: SimConfig | None = None, **overrides: Any) -> FastAPI:
    """The simulator app; `overrides` are SimConfig fields (used when `config` is None, else applied to it)."""
    if config is None:
        config = SimConfig(**overrides)
    elif overrides:
        config = config.model_copy(update=overrides)
    app = FastAPI(title="Trade API simulator (Dome, Polymarket Data API v2)", version="1")
    app.state.sim = SimState(config)

    @app.get("/v1/polymarket/orders")
    async def orders(request: Request) -> Response:
        sim: SimState = request.app.state.sim
        params = request.query_params
        wallet = (params.get("user") or "").strip().lower() or None
        sim.stats.count_request(wallet, bool(params.get("pagination_key")))
        response = await _answer(sim, request, wallet)
        sim.stats.count_status(response.status_code)
        return response

    @app.get("/v2/trades")
    async def trades(request: Request) -> Response:
        sim: SimState = request.app.state.sim
        params = request.query_params
        wallet = (params.get("user") or "").strip().lower() or None
        sim.stats.count_request(wallet, bool(params.get("cursor")), "/v2/trades")
        trace = sim.trace_id()
        response = await _answer_trades(sim, request, wallet, trace)
        if response.media_type != "text/html":
            response.headers["x-trace-id"] = trace
        sim.stats.count_status(response.status_code)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return request.app.state.sim.stats.as_json()

    @app.post("/_sim/stats/reset", status_code=204)
    async def reset_stats(request: Request) -> Response:
        request.app.state.sim.reset_stats()
        return Response(status_code=204)

    @app.get("/_sim/faults")
    async def faults(request: Request) -> dict[str, Any]:
        return request.app.state.sim.faults.model_dump()

    @app.post("/_sim/faults")
    async def patch_faults(request: Request) -> Response:
        try:
            patch = await request.json()
            if not isinstance(patch, dict):
                raise ValueError("the body must be a JSON object of fault fields")
            current = request.app.state.sim.patch_faults(patch)
        except ValidationError as exc:
            return json_response(
                422, {"error": "Invalid faults", "message": exc.errors(include_url=False, include_context=False)}
            )
        except ValueError as exc:
            return json_response(400, {"error": "Invalid faults", "message": str(exc)})
        return json_response(200, current.model_dump())

    @app.get("/_sim/wallets")
    async def wallets(request: Request, source: str = "dome") -> Response:
        universe = request.app.state.sim.universe
        if source not in ("dome", "polymarket"):
            return json_response(400, {"error": "Invalid source", "message": "source must be dome or polymarket"})
        listing = {
            "special": universe.special,
            "data_api_special": universe.data_api_special,
            "wallets": [{"wallet": w, "trades": universe.count(w)} for w in universe.wallets(source)],
        }
        return json_response(200, listing)

    @app.get("/_sim/ground-truth/{wallet}")
    async def ground_truth(wallet: str, request: Request, source: str = "dome") -> StreamingResponse:
        """The wallet's rows as `source` serves them in full (Polymarket: taker_only=false&start=1)."""
        universe = request.app.state.sim.universe
        wallet = wallet.lower()
        rows = universe.trade_rows if source == "polymarket" else universe.rows

        def lines() -> Iterator[bytes]:
            batch: list[str] = []
            for row in rows(wallet):
                batch.append(json.dumps({"wallet": wallet, **row}, separators=(",", ":")))
                if len(batch) == 1000:
                    yield ("\n".join(batch) + "\n").encode()
                    batch.clear()
            if batch:
                yield ("\n".join(batch) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app
