"""The Dome API simulator as an ASGI app: `GET /v1/polymarket/orders` plus `/_sim/*` controls.

One request to /polymarket/orders goes: count it -> API key (401) -> burst fault (429) -> the key's
rate-limit windows (429 with Retry-After and x-ratelimit-*) -> latency and slow fault -> 5xx fault
-> `fail_wallets` -> parameter checks (400/401) -> the page -> drop or truncate faults -> 200.
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
    dropped,
    dumps,
    json_response,
    server_error,
    too_many_requests,
    truncated,
)
from emulators.dome.state import SimState


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
    faults = sim.faults
    delay = faults.latency_ms / 1000 * roll.jitter
    if roll.slow:
        stats.count_fault("slow")
        delay += faults.slow_seconds
    if delay > 0:
        await config.sleep(delay)
    if roll.error_5xx:
        stats.count_fault("error_5xx")
        return server_error(roll.pick)
    if wallet in faults.fail_wallets:
        stats.count_fault("fail_wallet")
        status = faults.fail_wallets[wallet]
        return json_response(status, {"error": _phrase(status), "message": f"Simulated failure for wallet {wallet}"})
    try:
        body = sim.book.page(parse(request.query_params))
    except ApiError as exc:
        return json_response(exc.status, exc.body, limit_headers)
    payload = dumps(body)
    if roll.drop:
        stats.count_fault("drop")
        return dropped(payload)
    if roll.truncated:
        stats.count_fault("truncated")
        return truncated(payload)
    stats.rows_served += len(body["orders"])
    return Response(payload, media_type="application/json", headers=limit_headers)


def create_app(config: SimConfig | None = None, **overrides: Any) -> FastAPI:
    """The simulator app; `overrides` are SimConfig fields (used when `config` is None, else applied to it)."""
    if config is None:
        config = SimConfig(**overrides)
    elif overrides:
        config = config.model_copy(update=overrides)
    app = FastAPI(title="Dome API simulator", version="1")
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
    async def wallets(request: Request) -> dict[str, Any]:
        universe = request.app.state.sim.universe
        return {
            "special": universe.special,
            "wallets": [{"wallet": w, "trades": universe.count(w)} for w in universe.wallets()],
        }

    @app.get("/_sim/ground-truth/{wallet}")
    async def ground_truth(wallet: str, request: Request) -> StreamingResponse:
        universe = request.app.state.sim.universe
        wallet = wallet.lower()

        def lines() -> Iterator[bytes]:
            batch: list[str] = []
            for row in universe.rows(wallet):
                batch.append(json.dumps({"wallet": wallet, **row}, separators=(",", ":")))
                if len(batch) == 1000:
                    yield ("\n".join(batch) + "\n").encode()
                    batch.clear()
            if batch:
                yield ("\n".join(batch) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app
