"""A front for several instances of one service: what Cloud Run's load balancer is to a service's
instances, for the local cloud (`python -m emulators.dev --fetchers 3`).

A push subscription has one endpoint, so N fetcher processes sit behind one address: each request
(method, path, headers, body) goes to the instance with the fewest requests in hand (ties in turn),
and its answer comes back as it was. Cloud Run too routes a request to an instance with free
concurrency, not blindly in turn: an instance that pages slowly (a small share of the key) is not
handed more pushes than it can work while another waits idle, holding Pub/Sub's push window. An
instance that refuses the connection answers 503 here, which Pub/Sub treats as a nack, as it treats
Cloud Run's own 503 when no instance can serve.
"""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})
FORWARD_TIMEOUT_SECONDS = 610.0  # longer than any push's ack deadline (600 s at most): Pub/Sub times out first


class Balancer:
    def __init__(self, backends: list[str], host: str = "127.0.0.1", port: int = 0) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = [b.rstrip("/") for b in backends]
        self.forwarded = {b: 0 for b in self.backends}
        in_hand = {b: 0 for b in self.backends}
        turn = itertools.count()
        lock = threading.Lock()
        balancer = self

        def pick() -> str:
            with lock:
                start = next(turn)
                order = [self.backends[(start + k) % len(self.backends)] for k in range(len(self.backends))]
                backend = min(order, key=in_hand.__getitem__)
                in_hand[backend] += 1
                balancer.forwarded[backend] += 1
                return backend

        def done(backend: str) -> None:
            with lock:
                in_hand[backend] -= 1

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                backend = pick()
                try:
                    self._to(backend)
                finally:
                    done(backend)

            def _to(self, backend: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    answer = requests.request(
                        self.command, backend + self.path, data=body, headers=headers, timeout=FORWARD_TIMEOUT_SECONDS
                    )
                    status, content, kept = answer.status_code, answer.content, list(answer.headers.items())
                except requests.RequestException as exc:
                    status, content, kept = 503, f"{backend}: {type(exc).__name__}".encode(), []
                self.send_response(status)
                for key, value in kept:
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="balancer", daemon=True)

    def start(self) -> Balancer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
