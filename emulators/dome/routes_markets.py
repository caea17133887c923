"""The markets and events endpoints: Dome's `/v1/polymarket/markets` and `/v1/polymarket/events` (same
key, same rate-limit budget as /orders), Gamma's `/gamma/markets/keyset` and `/gamma/events` (the real
Gamma is its own host, gamma-api.polymarket.com; here it is mounted under `/gamma`: `RunningSimulator
.gamma_url`). Their requests are counted in `stats.markets`, apart from the trade endpoints'.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from starlette.responses import Response

from emulators.dome.dome_markets import parse_events, parse_markets
from emulators.dome.gamma import parse_keyset
from emulators.dome.pipeline import dome_answer, gamma_answer
from emulators.dome.state import SimState


async def _counted(request: Request, endpoint: str, answer: Callable[[SimState], Awaitable[Response]]) -> Response:
    sim: SimState = request.app.state.sim
    counters = sim.stats.markets
    counters.count_request(endpoint)
    response = await answer(sim)
    counters.count_status(response.status_code)
    return response


def add_market_routes(app: FastAPI) -> None:
    @app.get("/v1/polymarket/markets")
    async def dome_markets(request: Request) -> Response:
        params = request.query_params

        def answer(sim: SimState) -> Awaitable[Response]:
            page = lambda: sim.market_index.markets(parse_markets(params))  # noqa: E731
            return dome_answer(sim, request, sim.stats.markets, page, "markets", "condition_id")

        return await _counted(request, "/v1/polymarket/markets", answer)

    @app.get("/v1/polymarket/events")
    async def dome_events(request: Request) -> Response:
        params = request.query_params

        def answer(sim: SimState) -> Awaitable[Response]:
            page = lambda: sim.market_index.events(parse_events(params))  # noqa: E731
            return dome_answer(sim, request, sim.stats.markets, page, "events", "event_slug")

        return await _counted(request, "/v1/polymarket/events", answer)

    @app.get("/gamma/markets/keyset")
    async def gamma_markets(request: Request) -> Response:
        params = request.query_params

        def answer(sim: SimState) -> Awaitable[Response]:
            page = lambda: sim.gamma.keyset(parse_keyset(params))  # noqa: E731
            limiter = sim.gamma_markets_limiter
            return gamma_answer(sim, request, sim.stats.markets, limiter, page, "markets", "conditionId")

        return await _counted(request, "/gamma/markets/keyset", answer)

    @app.get("/gamma/events")
    async def gamma_events(request: Request) -> Response:
        params = request.query_params

        def answer(sim: SimState) -> Awaitable[Response]:
            page = lambda: sim.gamma.events(params)  # noqa: E731
            return gamma_answer(sim, request, sim.stats.markets, sim.gamma_events_limiter, page, None, "slug")

        return await _counted(request, "/gamma/events", answer)
