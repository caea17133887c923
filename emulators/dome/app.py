"""The trade API simulator as an ASGI app: Dome's `GET /v1/polymarket/orders`, `/markets` and `/events`,
Polymarket's Data API `GET /v2/trades` and Gamma's `GET /gamma/markets/keyset` and `/gamma/events` (all
from the same universe), plus `/_sim/*` controls (`routes_sim`).

Dome's requests go through `pipeline.dome_answer` (one rate-limit budget per key for all three
endpoints), Gamma's through `pipeline.gamma_answer` (`routes_markets`). One request to /v2/trades goes
the same way as Dome's without an API key (the Data API has none), with the per-client window (200 per
10 s by client address) instead of the key's, and v2 error bodies `{error, code, retryable, trace_id}`;
every JSON answer carries `x-trace-id` (the HTML pages do not).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from emulators.dome.config import SimConfig
from emulators.dome.orders import OrdersQuery, parse
from emulators.dome.pipeline import body_faults, dome_answer, latency
from emulators.dome.responses import cdn_block_page, json_response, server_error
from emulators.dome.routes_markets import add_market_routes
from emulators.dome.routes_sim import add_sim_routes
from emulators.dome.state import SimState
from emulators.dome.trades import V2Error
from emulators.dome.trades import parse as parse_trades


def _query(sim: SimState, params: Mapping[str, str]) -> OrdersQuery:
    """The /orders query, its `limit` capped at the simulator's `max_page_rows`."""
    query, cap = parse(params), sim.config.max_page_rows
    return dataclasses.replace(query, limit=min(query.limit, cap)) if cap else query


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
    await latency(sim, roll, stats)
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
        with sim.lock:
            body = sim.feed.page(query, short=roll.short_page)
    except V2Error as exc:
        return error(exc)
    return body_faults(roll, stats, body, "data", "timestamp", {"cache-control": "public, max-age=300"})


def create_app(config: SimConfig | None = None, **overrides: Any) -> FastAPI:
    """The simulator app; `overrides` are SimConfig fields (used when `config` is None, else applied to it)."""
    if config is None:
        config = SimConfig(**overrides)
    elif overrides:
        config = config.model_copy(update=overrides)
    app = FastAPI(title="Trade API simulator (Dome, Polymarket Data API v2, Gamma)", version="1")
    app.state.sim = SimState(config)

    @app.get("/v1/polymarket/orders")
    async def orders(request: Request) -> Response:
        sim: SimState = request.app.state.sim
        params = request.query_params
        wallet = (params.get("user") or "").strip().lower() or None
        window = (params.get("start_time"), params.get("end_time"))
        sim.stats.count_request(wallet, bool(params.get("pagination_key")), window=window)
        response = await dome_answer(
            sim, request, sim.stats, lambda: sim.book.page(_query(sim, params)), "orders", "tx_hash", wallet
        )
        sim.stats.count_status(response.status_code)
        return response

    @app.get("/v2/trades")
    async def trades(request: Request) -> Response:
        sim: SimState = request.app.state.sim
        params = request.query_params
        wallet = (params.get("user") or "").strip().lower() or None
        window = (params.get("start"), params.get("end"))
        sim.stats.count_request(wallet, bool(params.get("cursor")), "/v2/trades", window=window)
        trace = sim.trace_id()
        response = await _answer_trades(sim, request, wallet, trace)
        if response.media_type != "text/html":
            response.headers["x-trace-id"] = trace
        sim.stats.count_status(response.status_code)
        return response

    add_market_routes(app)
    add_sim_routes(app)
    return app
