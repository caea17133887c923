"""The page body is read in one go (not 10 KB at a time): it must still be the whole body, or an error.

A server at the edge (a socket, not our code) answers with a Content-Length and then sends all of it,
or half of it and hangs up.
"""

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.limiter import RateLimiter, Window
from shared.core.errors import SourceUnavailable, TransientError

WALLET = "0x" + "a" * 40


@contextmanager
def serve(body: bytes, send: int) -> Iterator[str]:
    """An HTTP/1.1 server on a free port that answers every request with `body`'s length and its
    first `send` bytes, then closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                conn.sendall(head.encode() + body[:send])

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def page(rows: int) -> bytes:
    order = {
        "tx_hash": "0x" + "1" * 64, "order_hash": "0x" + "2" * 64, "user": WALLET, "condition_id": "0x" + "3" * 64,
        "token_id": "1" * 77, "side": "BUY", "shares": 1_000_000, "shares_normalized": 1.0, "price": 0.5,
        "timestamp": 1_700_000_000, "title": "t" * 200,
    }  # fmt: skip
    orders = [{**order, "log_index": i} for i in range(rows)]
    return json.dumps({"orders": orders, "pagination": {"has_more": False, "total": rows}}).encode()


def source(base: str) -> DomeSource:
    return DomeSource(base, "key", RateLimiter((Window(1000, 1.0),)), max_attempts=1)


def test_a_large_body_arrives_whole() -> None:
    body = page(2000)  # ~1.2 MB: many socket reads' worth
    assert len(body) > 1_000_000
    with serve(body, len(body)) as base:
        rows = [r for p in source(base).pages(WALLET) for r in p.rows]
    assert [r["log_index"] for r in rows] == list(range(2000))


def test_a_body_cut_short_is_a_transient_error_not_a_short_page() -> None:
    body = page(2000)
    with serve(body, len(body) // 2) as base, pytest.raises(TransientError) as caught:
        list(source(base).pages(WALLET))
    assert isinstance(caught.value, SourceUnavailable)
    assert caught.value.fields["wallet"] == WALLET
