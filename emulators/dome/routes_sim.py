"""The simulator's own controls, under `/_sim` (and `/healthz`): stats, faults, the wallet listing, the
ground truth of rows, markets and events (NDJSON, the very lines `Universe.export_*` write), and
`POST /_sim/advance {"seconds": N}`, which moves the universe's now (`growth`) and answers what changed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.responses import Response, StreamingResponse

from emulators.dome import truth
from emulators.dome.responses import json_response
from emulators.dome.state import SimState

_BAD_SOURCE = {"error": "Invalid source", "message": "source must be dome or polymarket"}


def _sim(request: Request) -> SimState:
    sim: SimState = request.app.state.sim
    return sim


def add_sim_routes(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return _sim(request).stats.as_json()

    @app.post("/_sim/stats/reset", status_code=204)
    async def reset_stats(request: Request) -> Response:
        _sim(request).reset_stats()
        return Response(status_code=204)

    @app.get("/_sim/faults")
    async def faults(request: Request) -> dict[str, Any]:
        return _sim(request).faults.model_dump()

    @app.post("/_sim/faults")
    async def patch_faults(request: Request) -> Response:
        try:
            patch = await request.json()
            if not isinstance(patch, dict):
                raise ValueError("the body must be a JSON object of fault fields")
            current = _sim(request).patch_faults(patch)
        except ValidationError as exc:
            return json_response(
                422, {"error": "Invalid faults", "message": exc.errors(include_url=False, include_context=False)}
            )
        except ValueError as exc:
            return json_response(400, {"error": "Invalid faults", "message": str(exc)})
        return json_response(200, current.model_dump())

    @app.post("/_sim/advance")
    async def advance(request: Request) -> Response:
        """Body `{"seconds": N}` (a whole number >= 1); answers `AdvanceReport.as_json()`."""
        try:
            body = await request.json()
            seconds = body.get("seconds") if isinstance(body, dict) else None
            if not isinstance(seconds, int) or isinstance(seconds, bool):
                raise ValueError('the body must be {"seconds": N} with N a whole number >= 1')
            report = _sim(request).advance(seconds)
        except ValueError as exc:
            return json_response(400, {"error": "Invalid advance", "message": str(exc)})
        return json_response(200, report)

    @app.get("/_sim/wallets")
    async def wallets(request: Request, source: str = "dome") -> Response:
        universe = _sim(request).universe
        if source not in truth.SOURCES:
            return json_response(400, _BAD_SOURCE)
        listing = {
            "special": universe.special,
            "data_api_special": universe.data_api_special,
            "growth_wallets": universe.growth_wallets,
            "late_edges": universe.late_edges,
            "now": universe.now,
            "wallets": [{"wallet": w, "trades": universe.count(w)} for w in universe.wallets(source)],
        }
        return json_response(200, listing)

    @app.get("/_sim/ground-truth/{wallet}")
    async def ground_truth(wallet: str, request: Request, source: str = "dome") -> StreamingResponse:
        """The wallet's rows as `source` serves them in full (Polymarket: taker_only=false&start=1)."""
        universe = _sim(request).universe
        wallet = wallet.lower()
        return StreamingResponse(
            truth.ndjson(truth.wallet_rows(universe, wallet, source)), media_type="application/x-ndjson"
        )

    @app.get("/_sim/markets-truth")
    async def markets_truth(request: Request, source: str = "dome") -> Response:
        """`Universe.export_markets_truth`'s lines; `condition_id` (repeated) narrows them to those ids."""
        if source not in truth.SOURCES:
            return json_response(400, _BAD_SOURCE)
        ids = request.query_params.getlist("condition_id") or None
        lines = list(truth.market_lines(_sim(request).universe, source, ids))
        return StreamingResponse(truth.ndjson(lines), media_type="application/x-ndjson")

    @app.get("/_sim/events-truth")
    async def events_truth(request: Request, source: str = "dome") -> Response:
        if source not in truth.SOURCES:
            return json_response(400, _BAD_SOURCE)
        lines = list(truth.event_lines(_sim(request).universe, source))
        return StreamingResponse(truth.ndjson(lines), media_type="application/x-ndjson")
