"""The simulator's answers, good and bad: Dome-style JSON errors, 429s, 5xx pages, broken bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

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


class ConnectionDropped(Exception):
    """Raised mid-body on purpose: the server closes the connection and the client sees a broken read."""


def dumps(body: Any) -> bytes:
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
