"""A hostile trade API for the failure tests: a real HTTP server (stdlib, threads) that misbehaves on
purpose — everywhere, or for chosen wallets while it passes the others on to the simulator.

    behaviours: "500"       every request answers 500
                "html"      200 with an HTML page (a proxy's error page)
                "stall"     accepts, reads the request, never answers
                "cycle"     Dome pages whose pagination_key goes A -> B -> A (has_more stays true)
                "empty"     empty Dome pages with has_more true and a new key each time, forever
                "redirect"  301 to another origin
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests


class HostileApi:
    def __init__(self, behaviour: str | None = None, *, wallets: dict[str, str] | None = None, upstream: str = ""):
        self.behaviour = behaviour  # for every request (None: only `wallets` misbehave)
        self.wallets = {w.lower(): b for w, b in (wallets or {}).items()}
        self.upstream = upstream.rstrip("/")  # where well-behaved requests go (the simulator's root)
        self.requests: list[str] = []
        self._stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api.requests.append(self.path)
                api.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HostileApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(h.path).query)
        wallet = (query.get("user") or [""])[0].lower()
        behaviour = self.wallets.get(wallet, self.behaviour)
        if behaviour is None:
            upstream = requests.get(self.upstream + h.path, headers=dict(h.headers), timeout=30)
            return self._send(h, upstream.status_code, upstream.content, upstream.headers.get("content-type", ""))
        if behaviour == "500":
            return self._send(h, 500, b'{"error":"Internal","message":"boom"}', "application/json")
        if behaviour == "html":
            return self._send(h, 200, b"<html><body>Service temporarily unavailable</body></html>", "text/html")
        if behaviour == "stall":
            while not self._stop.wait(0.1):
                pass
            return None
        if behaviour == "redirect":
            h.send_response(301)
            h.send_header("Location", "http://127.0.0.1:9/v1/polymarket/orders")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        key = (query.get("pagination_key") or [""])[0]
        if behaviour == "cycle":
            following = {"": "A", "A": "B", "B": "A"}[key]
            return self._page(h, wallet, [_order(wallet, key)], following)
        if behaviour == "empty":
            return self._page(h, wallet, [], f"k{time.monotonic_ns()}")
        raise ValueError(behaviour)

    def _page(self, h: BaseHTTPRequestHandler, wallet: str, orders: list[dict[str, Any]], key: str) -> None:
        body = {"orders": orders, "pagination": {"limit": 1000, "has_more": True, "pagination_key": key}}
        self._send(h, 200, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


def _order(wallet: str, key: str) -> dict[str, Any]:
    n = {"": 0, "A": 1, "B": 2}[key]
    return {
        "token_id": str(10**76 + n),
        "token_label": "Yes",
        "side": "BUY",
        "market_slug": "m",
        "condition_id": "0x" + "c" * 64,
        "shares": 1_000_000,
        "shares_normalized": 1.0,
        "price": 0.5,
        "block_number": 100 + n,
        "log_index": n,
        "tx_hash": f"0x{n:064x}",
        "title": "t",
        "timestamp": 1_700_000_000 - n,
        "order_hash": f"0x{n + 7:064x}",
        "user": wallet,
        "taker": "0x" + "e" * 40,
    }
