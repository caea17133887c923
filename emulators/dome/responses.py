"""The simulator's answers, good and bad: Dome-style JSON errors, 429s, 5xx pages, a CDN block page,
broken bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key"}
_5XX = (
    (500, "Internal Server Error", "An unexpected error occurred"),
    (502, "Bad Gateway", "The upstream server returned an invalid response"),
    (503, "Service Unavailable", "The service is temporarily unavailable, please retry"),
)
_HTML = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n<center><h1>{status} {phrase}</h1>"
    "</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


# What a CDN's web-application firewall answers instead of the API (Cloudflare's block page, abridged).
_CDN_BLOCK = (
    '<!DOCTYPE html>\n<html lang="en-US">\n<head><title>Attention Required! | Cloudflare</title></head>\n'
    '<body><div id="cf-wrapper"><h1>Sorry, you have been blocked</h1>\n<h2>You are unable to access '
    "{host}</h2>\n<p>This website is using a security service to protect itself from online attacks.</p>\n"
    "<p>Cloudflare Ray ID: <strong>{ray}</strong></p></div></body>\n</html>\n"
)


class ConnectionDropped(Exception):
    """Raised mid-body on purpose: the server closes the connection and the client sees a broken read."""


def dumps(body: Any) -> bytes:
    """Compact JSON. orjson (a tenth of the stdlib's time for a 1,000-row page: the simulator shares the
    machine with the run it serves), the stdlib for what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":")).encode()


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def too_many_requests(message: str, headers: dict[str, str]) -> Response:
    return json_response(429, {"error": "Too Many Requests", "message": message}, headers)


def server_error(pick: float) -> Response:
    """One of 500/502/503, half the time with a JSON body and half with a proxy's HTML page."""
    status, phrase, message = _5XX[int(pick * 6) % 3]
    if pick < 0.5:
        return json_response(status, {"error": phrase, "message": message})
    return Response(_HTML.format(status=status, phrase=phrase), status_code=status, media_type="text/html")


def dropped(payload: bytes) -> StreamingResponse:
    """200 with a chunked body that stops halfway: the connection is cut without a final chunk."""

    def body() -> Iterator[bytes]:
        yield payload[: len(payload) // 2]
        raise ConnectionDropped("simulated connection drop")

    return StreamingResponse(body(), media_type="application/json")


def truncated(payload: bytes) -> Response:
    """200 with a complete HTTP response whose JSON stops in the middle."""
    return Response(payload[: len(payload) // 2], media_type="application/json")


def cdn_block_page(status: int, host: str, ray: str) -> Response:
    """An HTML block page where JSON was expected (the html fault)."""
    return Response(_CDN_BLOCK.format(host=host, ray=ray), status_code=status, media_type="text/html")


def missing_field(body: dict[str, Any], rows_key: str, field: str) -> dict[str, Any]:
    """The body with `field` gone from its first row (or, on an empty page, without `pagination`)."""
    rows = [dict(r) for r in body[rows_key]]
    if not rows:
        return {rows_key: rows}
    rows[0].pop(field, None)
    return {**body, rows_key: rows}
