"""The live progress line of `backfill run`: wallets done/total, trades, requests/s, 429s, ETA."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class ProgressView:
    def __init__(self, runner: Any, console: Console, quiet: bool = False, every: float = 0.5) -> None:
        self.runner = runner
        self.console = console
        self.quiet = quiet or not console.is_terminal
        self.every = every
        self._live: Live | None = None
        self._last = 0.0
        self._start = time.monotonic()
        self._done_at_start: int | None = None
        self._last_print = 0.0

    def __enter__(self) -> ProgressView:
        if not self.quiet:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.tick(self.runner, force=True)
        if self._live is not None:
            self._live.__exit__(*exc)

    def tick(self, runner: Any, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        status = runner.warehouse.status(datetime.now(UTC))
        done = status.by_status.get("complete", 0)
        if self._done_at_start is None:
            self._done_at_start = done
        elapsed = max(now - self._start, 1e-6)
        stats = runner.source.stats
        rate = (done - self._done_at_start) / elapsed
        remaining = status.wallets_total - done - status.dead_letters
        eta = f"{remaining / rate:,.0f}s" if rate > 0 and remaining > 0 else "-"
        fields = {
            "wallets": f"{done}/{status.wallets_total}",
            "trades": f"{status.trades:,}",
            "req/s": f"{stats.requests / elapsed:.1f}",
            "429s": str(stats.rate_limited),
            "in flight": str(status.in_flight),
            "dead letters": str(status.dead_letters),
            "elapsed": f"{elapsed:.0f}s",
            "ETA": eta,
        }
        if self._live is not None:
            table = Table(show_header=True, header_style="bold")
            for name in fields:
                table.add_column(name)
            table.add_row(*fields.values())
            self._live.update(table)
        elif force or now - self._last_print >= 5:
            self._last_print = now
            self.console.print("  ".join(f"{k}: {v}" for k, v in fields.items()))
