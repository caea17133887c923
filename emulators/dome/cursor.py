"""The opaque `pagination_key`: base64 of JSON, shaped like Dome's documented example.

    {"block_timestamp": "2025-01-19T12:00:00.000Z", "tx_hash": "0x…", "log_index": 10, "total": 5109619,
     "position": 1234, "sequence": 5373952010, "sig": "…"}

The first four keys are Dome's (dome-api.md §1: the decoded example). The key is a keyset cursor, as a
real one is: it names the SORT KEY of the last row returned, (timestamp, sequence) with `sequence` =
block_number << 16 | log_index (the fill's own values, also on old rows Dome serves with null log_index),
and the next page starts right after that key. So a key stays valid while the wallet grows: rows added
before it (newer) are not in the walk, rows after it (older, late-indexed ones included) are, once each.
`position` is only where that row was when the key was issued (informational). `sig` is a keyed hash
of everything else, so any edit is caught; the server also checks that the wallet queried has the row
the key names (same sort key and tx_hash, same log_index): a key used for another wallet is invalid.

`seal`/`unseal` are the same signed base64 JSON for any payload (the markets and events keys).
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
    sequence: int


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _sign(secret: bytes, payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(text, key=secret, digest_size=12).hexdigest()


def seal(payload: dict[str, Any], secret: bytes) -> str:
    """base64 of the JSON payload plus its `sig`."""
    signed = {**payload, "sig": _sign(secret, payload)}
    return base64.b64encode(json.dumps(signed, separators=(",", ":")).encode()).decode()


def unseal(key: str, secret: bytes) -> dict[str, Any]:
    """The payload (without `sig`), or InvalidCursor for anything that is not a key this server signed."""
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
    return payload


def encode(cursor: Cursor, secret: bytes) -> str:
    payload: dict[str, Any] = {
        "block_timestamp": _iso(cursor.timestamp),
        "tx_hash": cursor.tx_hash,
        "log_index": cursor.log_index,
        "total": cursor.total,
        "position": cursor.position,
        "sequence": cursor.sequence,
    }
    return seal(payload, secret)


def decode(key: str, secret: bytes) -> Cursor:
    """The cursor, or InvalidCursor for anything that is not a key this server signed."""
    payload = unseal(key, secret)
    try:
        stamp = datetime.strptime(payload["block_timestamp"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        return Cursor(
            int(payload["position"]),
            int(stamp.timestamp()),
            str(payload["tx_hash"]),
            payload["log_index"],
            int(payload["total"]),
            int(payload["sequence"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor("missing or malformed fields") from exc
