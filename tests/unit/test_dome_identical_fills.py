"""Dome rows without a log_index (older data) are keyed by a fingerprint. A Dome-compatible server may
hold identical fills of one transaction, even across a page boundary: each must stay its own row, and a
part must not end inside such a transaction (its occurrence numbers would restart). The server here is
an edge fake speaking Dome's documented response shape over real HTTP."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.limiter import RateLimiter, Window
from shared.ports.source import may_end_after

WALLET = "0x" + "a" * 40


def order(tx: str, log_index: int | None, shares: int = 5_000_000) -> dict:
    return {
        "token_id": "123",
        "token_label": "Yes",
        "side": "BUY",
        "market_slug": "m",
        "condition_id": "0x" + "c" * 64,
        "shares": shares,
        "shares_normalized": shares / 1e6,
        "price": 0.5,
        "block_number": 1,
        "log_index": log_index,
        "tx_hash": tx,
        "title": "t",
        "timestamp": 1_700_000_000,
        "order_hash": "0x" + "d" * 64,
        "user": WALLET,
        "taker": "0x" + "e" * 40,
    }


TX1, TX2, TX3 = ("0x" + c * 64 for c in "123")
PAGES = {
    None: ([order(TX1, 7), order(TX2, None), order(TX2, None)], "k2"),
    "k2": ([order(TX2, None), order(TX3, None)], "k3"),
    "k3": ([order(TX3, None, shares=1_000_000)], None),
}


MODERN = {  # every row with a log_index, a transaction straddling the boundary
    None: ([order(TX1, 1), order(TX2, 2)], "k2"),
    "k2": ([order(TX2, 3)], None),
}
SERVED: dict = {"pages": PAGES, "requests": 0}


class FakeDome(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        SERVED["requests"] += 1
        rows, next_key = SERVED["pages"][query.get("pagination_key", [None])[0]]
        pagination = {"limit": 1000, "offset": 0, "total": 6, "has_more": next_key is not None}
        if next_key:
            pagination["pagination_key"] = next_key
        body = json.dumps({"orders": rows, "pagination": pagination}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def source():
    SERVED.update(pages=PAGES, requests=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDome)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = DomeSource(f"http://127.0.0.1:{server.server_address[1]}/v1", "k", RateLimiter((Window(100, 1.0),)))
    yield client
    client.close()
    server.shutdown()
    server.server_close()


def test_identical_fills_without_log_index_each_keep_a_row_across_a_page_boundary(source):
    pages = list(source.pages(WALLET))
    keys = [row["trade_key"] for page in pages for row in page.rows]
    assert len(keys) == 6 and len(set(keys)) == 6
    # The three identical TX2 fills: the first keeps the plain fingerprint key, the others count on.
    tx2 = [row["trade_key"] for page in pages for row in page.rows if row["tx_hash"] == TX2]
    assert tx2[1] == tx2[0] + ":1" and tx2[2] == tx2[0] + ":2"


def test_a_part_may_not_end_inside_a_transaction_with_fingerprint_keys(source):
    pages = list(source.pages(WALLET))
    ends = [may_end_after(page, after) for page, after in itertools.zip_longest(pages, pages[1:])]
    # page 1 ends inside TX2, page 2 inside TX3 (both without log_index); the last page ends the walk.
    assert ends == [False, False, True]
    assert [p.resumable for p in pages] == [None, None, True]  # known only from the next page
    assert [p.continues for p in pages] == [False, True, True]


def test_a_page_goes_out_at_once_and_is_known_resumable_only_when_its_last_transaction_needs_no_look(source):
    walk = source.pages(WALLET)
    first = next(walk)
    assert SERVED["requests"] == 1 and first.resumable is None  # ends inside TX2 (no log_index)
    walk.close()
    SERVED.update(pages=MODERN, requests=0)
    walk = source.pages(WALLET)
    first = next(walk)
    assert SERVED["requests"] == 1 and first.resumable is True  # log_index rows: may end here
    walk.close()


def test_a_straddling_transaction_with_log_indexes_still_lets_a_part_end_between_its_rows(source):
    SERVED.update(pages=MODERN, requests=0)
    pages = list(source.pages(WALLET))
    assert pages[1].continues and may_end_after(pages[0], pages[1])  # (tx_hash, log_index) keys: stable
