"""design rule 1: the natural key separates every real fill and nothing else."""

from shared.core.trades import dome_trade_key
from tests.fakes import dome_raw

W = "0x" + "a" * 40


def test_fills_of_one_transaction_get_distinct_keys():
    rows = [dome_raw(W, i) for i in range(3)]  # rows 0..2 share tx 0
    assert len({r["tx_hash"] for r in rows}) == 1
    assert len({dome_trade_key(W, r) for r in rows}) == 3


def test_one_order_filled_in_several_transactions_keeps_every_fill():
    a, b = dome_raw(W, 0), dome_raw(W, 5)
    b["order_hash"] = a["order_hash"]
    assert a["tx_hash"] != b["tx_hash"]
    assert dome_trade_key(W, a) != dome_trade_key(W, b)


def test_rows_without_log_index_are_keyed_by_fingerprint_and_stay_apart():
    rows = [dome_raw(W, i, log_index=False) for i in range(3)]
    keys = {dome_trade_key(W, r) for r in rows}
    assert len(keys) == 3 and all(":fp:" in k for k in keys)


def test_the_same_row_always_gets_the_same_key_even_if_numbers_change_form():
    raw = dome_raw(W, 1, log_index=False)
    again = {**raw, "shares": float(raw["shares"]), "price": 0.50}
    assert dome_trade_key(W, raw) == dome_trade_key(W, again)


def test_the_key_belongs_to_the_queried_wallet():
    raw = dome_raw(W, 0)
    assert dome_trade_key(W, raw) != dome_trade_key("0x" + "b" * 40, raw)
