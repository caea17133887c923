"""The per-page fast paths give exactly what the stdlib gives: the timestamps' text, the JSON read from
the API (a 77-digit token id sent unquoted keeps every digit), the part lines."""

import json
import random
from datetime import UTC, datetime

from shared.adapters.sources.http import loads_exact
from shared.core.trades import COLUMN_NAMES, iso_timestamp, part_line


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
