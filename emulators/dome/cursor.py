"""The opaque `pagination_key`: base64 of JSON, shaped like Dome's documented example.

    {"block_timestamp": "2025-01-19T12:00:00.000Z", "tx_hash": "0x…", "log_index": 10, "total": 5109619,
     "position": 1234, "sig": "…"}

The first four keys are Dome's (dome-api.md §1: the decoded example). `position` is the last row
returned (the seek point: the next page starts after it) and `sig` a keyed hash of everything else,
so any edit is caught. The server also checks that the row at `position` of the queried wallet still
has that timestamp, tx_hash and log_index: a cursor used for another wallet is invalid too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_LENGTH = 2048


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    position: int
    timestamp: int
    tx_hash: str
    log_index: int | None
    total: int


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _sign(secret: bytes, payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(text, key=secret, digest_size=12).hexdigest()


def encode(cursor: Cursor, secret: bytes) -> str:
    payload: dict[str, Any] = {
        "block_timestamp": _iso(cursor.timestamp),
        "tx_hash": cursor.tx_hash,
        "log_index": cursor.log_index,
        "total": cursor.total,
        "position": cursor.position,
    }
    payload["sig"] = _sign(secret, payload)
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode(key: str, secret: bytes) -> Cursor:
    """The cursor, or InvalidCursor for anything that is not a key this server signed."""
    if len(key) > MAX_LENGTH:
        raise InvalidCursor("too long")
    try:
        text = key.strip().replace("-", "+").replace("_", "/")
        payload = json.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("not base64 of JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("sig"), str):
        raise InvalidCursor("not a signed object")
    sig = payload.pop("sig")
    if sig != _sign(secret, payload):
        raise InvalidCursor("signature mismatch")
    try:
        stamp = datetime.strptime(payload["block_timestamp"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        return Cursor(
            int(payload["position"]),
            int(stamp.timestamp()),
            str(payload["tx_hash"]),
            payload["log_index"],
            int(payload["total"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor("missing or malformed fields") from exc
