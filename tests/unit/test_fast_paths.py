"""The per-page fast paths give exactly what the stdlib gives: the timestamps' text, the JSON read from
the API (a 77-digit token id sent unquoted keeps every digit), the part lines."""

import hashlib
import json
import random
from datetime import UTC, datetime
from enum import IntEnum

from shared.adapters.sources.http import loads_exact
from shared.core.trades import COLUMN_NAMES, fingerprint, iso_timestamp, part_line


def test_timestamps_are_formatted_as_datetime_formats_them():
    rng = random.Random(3)
    for epoch in [0, 1, 59, 3599, 86_399, 86_400, 951_782_400, 1_700_000_000] + [
        rng.randrange(4 * 10**9) for _ in range(5000)
    ]:
        assert iso_timestamp(epoch) == datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_api_json_keeps_every_digit_of_a_long_integer_and_reads_the_rest_alike():
    token = 10**76 + 12345
    body = json.dumps({"orders": [{"token_id": token, "shares": 1_000_000, "price": 0.5, "title": 'é "q"'}]})
    assert loads_exact(body.encode())["orders"][0]["token_id"] == token  # not 1e76
    plain = json.dumps({"orders": [{"token_id": str(token), "shares": 1_000_000, "price": 0.1 + 0.2, "x": None}]})
    assert loads_exact(plain.encode()) == json.loads(plain)
    assert loads_exact(b'{"a": NaN}')["a"] != loads_exact(b'{"a": NaN}')["a"]  # the stdlib's NaN, not an error


def test_part_lines_hold_the_columns_in_order_and_long_integers_whole():
    row = {name: None for name in COLUMN_NAMES} | {"trade_key": "k", "shares": 1_000_000.0, "title": 'a "b" é'}
    line = part_line({**row, "extra": 1})
    assert line.endswith("\n") and list(json.loads(line)) == list(COLUMN_NAMES)
    assert json.loads(line) == row
    long = part_line({**row, "block_number": 10**30})
    assert json.loads(long)["block_number"] == 10**30


def test_a_row_in_another_order_or_with_a_column_missing_is_still_written_in_table_order():
    row = {name: None for name in COLUMN_NAMES} | {"trade_key": "k", "run_id": "r"}
    for variant in (dict(reversed(row.items())), {k: v for k, v in row.items() if k != "title"}):
        line = part_line(variant)
        assert list(json.loads(line)) == list(COLUMN_NAMES)
        assert json.loads(line) == row


def test_fingerprints_follow_the_rule_the_stored_keys_were_made_with():
    # The keys already in warehouses were hashed from this text: numbers (not bools) as repr(float(x)),
    # anything else as str(x or ""). A faster path must give the same hash for every kind of field.
    def rule(*parts: object) -> str:
        text = "\x1f".join(
            repr(float(p)) if isinstance(p, int | float) and not isinstance(p, bool) else str(p or "")  # type: ignore[arg-type]
            for p in parts
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    samples = ["0xabc", "", None, 5, 5.0, 0, 0.1 + 0.2, True, False, 10**30, "5", -1.5e-7, IntEnum("E", "A").A]
    rng = random.Random(5)
    for _ in range(500):
        parts = rng.choices(samples, k=rng.randrange(1, 9))
        assert fingerprint(*parts) == rule(*parts)
    assert fingerprint("tx", 5, "BUY") == fingerprint("tx", 5.0, "BUY")
