"""Run the simulator with uvicorn on a background thread, on a free 127.0.0.1 port.

with run_simulator(SimConfig(tier="dev", whale_trades=3_000)) as sim:
    requests.get(f"{sim.base_url}/polymarket/orders", params={"user": w}, headers=...)
    requests.get(f"{sim.data_api_url}/v2/trades", params={"user": w, "taker_only": "false", "start": 1})
    requests.get(f"{sim.base_url}/polymarket/markets", params={"condition_id": ids, "limit": 100}, headers=...)
    requests.get(f"{sim.gamma_url}/markets/keyset", params={"condition_ids": ids, "closed": "true"})
    sim.state.advance(86_400)  # a day passes: new and late fills, a market resolves
    sim.state.stats  # what the server saw
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from emulators.dome.app import create_app
from emulators.dome.config import SimConfig
from emulators.dome.responses import ConnectionDropped
from emulators.dome.state import SimState

START_TIMEOUT_SECONDS = 15.0


class _HideDrops(logging.Filter):
    """uvicorn logs every exception that ends a response; a drop fault is one on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def hide_drop_tracebacks() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDrops) for f in logger.filters):
        logger.addFilter(_HideDrops())


class RunningSimulator:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, state: SimState, host: str, port: int):
        self._server, self._thread = server, thread
        self.state = state
        self.host, self.port = host, port
        self.root_url = f"http://{host}:{port}"
        self.base_url = f"{self.root_url}/v1"
        """What clients use as Dome's base URL (the real one is https://api.domeapi.io/v1)."""
        self.data_api_url = self.root_url
        """What clients use as the Data API's base URL (the real one is https://data-api.polymarket.com)."""
        self.gamma_url = f"{self.root_url}/gamma"
        """What clients use as Gamma's base URL (the real one is https://gamma-api.polymarket.com)."""

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread. Idempotent."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_simulator(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0, **overrides: Any
) -> RunningSimulator:
    """Start serving and return once the port accepts connections (port 0: a free one)."""
    app = create_app(config, **overrides)
    hide_drop_tracebacks()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name="dome-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the trade API simulator did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return RunningSimulator(server, thread, app.state.sim, host, bound)
