"""The live display of `backfill run`: a bar of wallets done, the key's pace, an ETA, and the big wallets.

On a terminal (rich Live, redrawn every half second):

    wallets ━━━━━━━━━━━━━━╺━━━━━━━━━━━━  812/1,510 (54%)  trades 412,345
    47.9/50 req/s  429s 0  in flight 24  dead letters 1  elapsed 1m12s  ETA ~2m05s (estimate)
      0x1a2b…9f3e ━━━━━━━━╺━━━━━━━━━━━  pages 120/250  rows 120,000

Elsewhere (CI, `| tee`, a log file) the same facts as plain lines every 5 s, each line whole whatever
the console's width: one `progress` line, then one `wallet` line per big wallet.

A big wallet is one expected to take at least `BIG_PAGES` requests (or, size unknown, that has taken
them already); its pages and rows add up all its walks, each counted once (shared/embedded/observed.py).

The ETA, and why it is computed as it is: shared/embedded/eta.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shared.embedded.eta import Eta, estimate
from shared.embedded.observed import WalletProgress

if TYPE_CHECKING:
    from shared.embedded.runner import EmbeddedRunner

BIG_PAGES = 10  # a wallet of 10+ pages (10,000+ rows) gets a line of its own
MAX_BIG_LINES = 8  # the biggest ones, by pages left; the rest are counted
PACE_SECONDS = 10.0  # the pace is measured over the key's longest window (Dome: 10 s)
LOG_EVERY = 5.0  # seconds between plain lines when not on a terminal


@dataclass(frozen=True)
class Snapshot:
    done: int
    total: int
    dead_letters: int  # letters pending (wallets, files, invalid lines of the wallets file)
    trades: int
    in_flight: int
    requests_per_second: float | None
    limit_per_second: float | None
    rate_limited: int
    elapsed: float
    eta: Eta
    big: list[WalletProgress]  # the biggest, MAX_BIG_LINES at most
    more_big: int  # big wallets not listed


class ProgressView:
    """`tick(runner)` from the run's loop; a context manager around the run (the last state is kept)."""

    def __init__(
        self,
        runner: EmbeddedRunner,
        console: Console,
        quiet: bool = False,
        every: float = 0.5,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.runner = runner
        self.console = console
        self.quiet = quiet or not console.is_terminal
        self.every = every
        # The source's clock: the wallets' start times it records are on the same one.
        self.clock = clock or runner.source.clock.monotonic
        self._live: Live | None = None
        self._parked = 0  # wallets parked by a dead letter at the last look
        self._last = self._last_print = float("-inf")
        self._start = self.clock()
        source = runner.source
        # (time, pages seen, requests): the pace over the last PACE_SECONDS
        self._samples = deque([(self._start, source.pages_seen, source.stats.requests)])

    def __enter__(self) -> ProgressView:
        if not self.quiet:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.tick(self.runner, force=True)
        finally:
            if self._live is not None:
                self._live.__exit__(*exc)

    def tick(self, runner: EmbeddedRunner | None = None, force: bool = False) -> None:
        """Redraw at most every `every` s (not on a terminal: print every LOG_EVERY s). The run's loop
        passes itself as `runner`: the view reads the runner it was built with."""
        now = self.clock()
        if not force and now - (self._last if self._live is not None else self._last_print) < self.every:
            return
        self._last = now
        if self._live is not None:
            self._live.update(render(self.snapshot(now)), refresh=True)
        elif force or now - self._last_print >= LOG_EVERY:
            self._last_print = now
            for line in log_lines(self.snapshot(now)):
                # soft_wrap: a line longer than the console's width stays one line (no wrap, no crop)
                self.console.print(line, soft_wrap=True, markup=False, highlight=False, emoji=False)

    def snapshot(self, now: float | None = None) -> Snapshot:
        now = self.clock() if now is None else now
        source = self.runner.source
        status = self.runner.warehouse.status(datetime.now(UTC))
        done = status.by_status.get("complete", 0)
        self._samples.append((now, source.pages_seen, source.stats.requests))
        while len(self._samples) > 2 and now - self._samples[1][0] >= PACE_SECONDS:
            self._samples.popleft()
        t0, pages0, requests0 = self._samples[0]
        span = now - t0  # a rate over less than a second says little (Dome allows bursts within 10 s)
        requests_per_second = (source.stats.requests - requests0) / span if span >= 1 else None
        pace = (source.pages_seen - pages0) / span if span >= 1 else None
        in_flight = self._without_dead_letters(source.in_flight(), status.parked)
        wallets_left = status.wallets_total - done - status.parked
        eta = estimate(wallets_left, in_flight, source.sizes().mean_pages, pace, now)
        big = sorted((w for w in in_flight if _is_big(w)), key=_pages_left_or_done, reverse=True)
        return Snapshot(
            done=done,
            total=status.wallets_total,
            dead_letters=status.dead_letters,
            trades=status.trades,
            in_flight=status.in_flight,
            requests_per_second=requests_per_second,
            limit_per_second=source.limit_per_second,
            rate_limited=source.stats.rate_limited,
            elapsed=now - self._start,
            eta=eta,
            big=big[:MAX_BIG_LINES],
            more_big=max(len(big) - MAX_BIG_LINES, 0),
        )

    def _without_dead_letters(self, in_flight: list[WalletProgress], parked: int) -> list[WalletProgress]:
        """A wallet dead-lettered midway never ends its walk: when more wallets are parked than at the
        last look, the waiting ones with a letter are no longer in flight (one query each, only then)."""
        if parked <= self._parked:
            self._parked = parked
            return in_flight
        self._parked = parked
        gone = {w.wallet for w in in_flight if not w.paging and self.runner.dead_letters.pending(1, wallet=w.wallet)}
        for wallet in gone:
            self.runner.source.forget(wallet)
        return [w for w in in_flight if w.wallet not in gone]


def _is_big(w: WalletProgress) -> bool:
    return (w.expected_pages or w.pages) >= BIG_PAGES


def _pages_left_or_done(w: WalletProgress) -> int:
    return w.pages_left if w.pages_left is not None else w.pages


# -- what is shown ------------------------------------------------------------------------------------


def render(s: Snapshot) -> RenderableType:
    """The terminal's view: the wallets bar, the pace against the key's limit, the ETA, the big wallets."""
    head = Table.grid(padding=(0, 2))
    head.add_row(
        "wallets",
        ProgressBar(total=max(s.total, 1), completed=s.done, width=40),
        f"{s.done:,}/{s.total:,} ({_percent(s.done, s.total)})",
        f"trades {s.trades:,}",
    )
    facts = Text(
        f"{_pace(s)}  429s {s.rate_limited:,}  in flight {s.in_flight:,}  dead letters {s.dead_letters:,}  "
        f"elapsed {_duration(s.elapsed)}  {_eta(s.eta)}"
    )
    wallets = Table.grid(padding=(0, 2))
    for w in s.big:
        wallets.add_row(
            f"  {_short(w.wallet)}",
            ProgressBar(total=w.expected_pages or max(w.pages, 1), completed=w.pages, width=24),
            _wallet_facts(w),
        )
    parts: list[RenderableType] = [head, facts, *([wallets] if s.big else [])]
    if s.more_big:
        parts.append(Text(f"  and {s.more_big} more big wallets"))
    return Group(*parts)


def log_lines(s: Snapshot) -> list[str]:
    """The same facts as plain lines: one `progress` line, then one per big wallet (full address)."""
    lines = [
        f"progress: wallets {s.done:,}/{s.total:,} ({_percent(s.done, s.total)})  trades {s.trades:,}  "
        f"{_pace(s)}  429s {s.rate_limited:,}  in flight {s.in_flight:,}  dead letters {s.dead_letters:,}  "
        f"elapsed {_duration(s.elapsed)}  {_eta(s.eta)}"
    ]
    lines += [f"  wallet {w.wallet}  {_wallet_facts(w)}" for w in s.big]
    if s.more_big:
        lines.append(f"  and {s.more_big} more big wallets")
    return lines


def _wallet_facts(w: WalletProgress) -> str:
    expected = "?" if w.expected_pages is None else f"{w.expected_pages:,}"
    notes = [f"{w.walks} windows"] if w.walks > 1 else []
    if w.resumed:
        notes.append("resumed: earlier pages not counted")
    return f"pages {w.pages:,}/{expected}  rows {w.rows:,}" + (f"  ({', '.join(notes)})" if notes else "")


def _pace(s: Snapshot) -> str:
    rate = "-" if s.requests_per_second is None else f"{s.requests_per_second:.1f}"
    limit = "" if s.limit_per_second is None else f"/{s.limit_per_second:g}"
    return f"{rate}{limit} req/s"


def _eta(eta: Eta) -> str:
    if eta.seconds is None:
        return "ETA -"
    if eta.estimated:
        return f"ETA ~{_duration(eta.seconds)} (estimate)"
    return f"ETA {_duration(eta.seconds)}"


def _percent(done: int, total: int) -> str:
    return f"{100 * done / total:.0f}%" if total else "-"


def _duration(seconds: float) -> str:
    if 0 < seconds < 0.5:
        return "<1s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _short(wallet: str) -> str:
    return f"{wallet[:6]}…{wallet[-4:]}" if len(wallet) > 12 else wallet
