"""Dome's rows are checked one by one: a bad row names its index and what is wrong with it; a good row
becomes the canonical row, keyed as `dome_trade_key` keys it."""

import pytest

from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.limiter import RateLimiter, Window
from shared.core.errors import MalformedPage
from shared.core.trades import COLUMN_NAMES, dome_trade_key, iso_timestamp
from tests.fakes import dome_raw

W = "0x" + "a" * 40


def parse(orders: list[object]) -> list[dict[str, object]]:
    body = {"orders": orders, "pagination": {"has_more": False}}
    source = DomeSource("http://127.0.0.1:9", None, RateLimiter((Window(1, 1.0),)))  # never asked
    return source._parse(W, body, {"wallet": W}).rows


BAD = {
    "tx_hash missing": ({"tx_hash": None}, "missing or empty 'tx_hash'"),
    "order_hash empty": ({"order_hash": ""}, "missing or empty 'order_hash'"),
    "user a number": ({"user": 5}, "missing or empty 'user'"),
    "condition_id missing": ({"condition_id": None}, "missing or empty 'condition_id'"),
    "shares a string": ({"shares": "5"}, "missing or non-numeric 'shares'"),
    "shares a bool": ({"shares": True}, "missing or non-numeric 'shares'"),
    "price missing": ({"price": None}, "missing or non-numeric 'price'"),
    "side lower case": ({"side": "buy"}, "side must be BUY or SELL, got 'buy'"),
    "token_id empty": ({"token_id": ""}, "missing 'token_id'"),
    "timestamp a float": ({"timestamp": 1.5}, "missing or non-integer 'timestamp'"),
    "log_index a string": ({"log_index": "1"}, "'log_index' must be an integer when present"),
    "block_number a float": ({"block_number": 2.0}, "'block_number' must be an integer when present"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_row_is_refused_with_its_index_and_what_is_wrong(case: str) -> None:
    change, said = BAD[case]
    rows: list[object] = [dome_raw(W, 0), dome_raw(W, 1) | change]
    with pytest.raises(MalformedPage) as caught:
        parse(rows)
    assert str(caught.value).startswith(f"row 1: {said}")


def test_a_row_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(MalformedPage, match="row 0: not an object"):
        parse(["x"])


def test_good_rows_become_canonical_rows_keyed_as_the_key_function_says() -> None:
    raws = [dome_raw(W, i, log_index=i % 2 == 0) for i in range(12)]
    raws[3] = raws[3] | {"token_id": 10**76 + 3, "shares": 7.0, "user": W.upper().replace("0X", "0x")}
    rows = parse([dict(r) for r in raws])
    for raw, row in zip(raws, rows, strict=True):
        assert tuple(row) == COLUMN_NAMES[:-1]  # run_id is the fetcher's
        assert row["token_id"] == str(raw["token_id"])  # an unquoted 77-digit id keeps every digit
        assert row["trade_key"] == dome_trade_key(W, raw | {"token_id": str(raw["token_id"])})
        assert row["timestamp"] == iso_timestamp(raw["timestamp"])
        assert row["user"] == raw["user"].lower()
        assert (row["log_index"], row["block_number"], row["shares"]) == (
            raw["log_index"],
            raw["block_number"],
            raw["shares"],
        )
    assert rows[3]["trade_key"] != rows[4]["trade_key"]
