"""`backfill probe`: page one wallet and count what the API returns, to settle the Data API's open
questions (docs/design.md ("Facts")) for one's own wallets in a minute.

Counts, not rows: pages, rows, rows per transaction, identical fills (same fingerprint) inside one
transaction, rows without a transaction hash, combo rows, the time span, and what the throttle did.
For the polymarket source it walks the wallet twice, with `taker_only=false` and with the API's
default `taker_only=true`: the difference is the maker fills a client with the default would miss.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.core.trades import fingerprint
from shared.ports.source import TradeSource


@dataclass
class WalkCounts:
    pages: int = 0
    rows: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    truncated: bool = False  # stopped at max_pages


@dataclass
class ProbeReport:
    wallet: str
    source: str
    walk: WalkCounts = field(default_factory=WalkCounts)
    taker_only_rows: int | None = None  # polymarket: rows with the API's default taker_only=true
    transactions: int = 0
    rows_per_tx: dict[int, int] = field(default_factory=dict)  # rows in a tx -> number of such txs
    identical_fills: int = 0  # rows whose fingerprint repeats an earlier row of the same tx
    without_tx_hash: int = 0
    combo_rows: int = 0
    mismatched_user: int = 0
    oldest: str | None = None
    newest: str | None = None

    @property
    def maker_rows(self) -> int | None:
        return None if self.taker_only_rows is None else self.walk.rows - self.taker_only_rows


def _walk(source: TradeSource, wallet: str, max_pages: int | None, on_row: Any = None) -> WalkCounts:
    counts = WalkCounts()
    stats = source.stats
    before = (stats.requests, stats.retries, stats.rate_limited)
    started = time.monotonic()
    for page in source.pages(wallet):
        counts.pages += 1
        counts.rows += len(page.rows)
        if on_row:
            for row in page.rows:
                on_row(row, page)
        if max_pages is not None and counts.pages >= max_pages and page.next_cursor is not None:
            counts.truncated = True
            break
    counts.seconds = time.monotonic() - started
    counts.requests = stats.requests - before[0]
    counts.retries = stats.retries - before[1]
    counts.rate_limited = stats.rate_limited - before[2]
    return counts


def probe(
    source: TradeSource, wallet: str, *, max_pages: int | None = None, taker_only_source: TradeSource | None = None
) -> ProbeReport:
    report = ProbeReport(wallet=wallet, source=source.name)
    per_tx: Counter[str] = Counter()
    seen: set[tuple[str, str, int]] = set()
    occurrences: Counter[tuple[str, str]] = Counter()
    mismatched = 0

    def on_row(row: dict[str, Any], page: Any) -> None:
        nonlocal mismatched
        tx = row.get("tx_hash")
        if not tx:
            report.without_tx_hash += 1
        group = tx or f"notx:{row['timestamp']}"
        per_tx[group] += 1
        fp = fingerprint(
            wallet, tx, row["token_id"], row["side"], row["shares_normalized"], row["price"], row["timestamp"]
        )
        occurrences[(group, fp)] += 1
        seen.add((group, fp, occurrences[(group, fp)]))
        if row.get("is_combo"):
            report.combo_rows += 1
        if row.get("user") and row["user"] != wallet:
            mismatched += 1
        ts = str(row["timestamp"])
        report.oldest = ts if report.oldest is None or ts < report.oldest else report.oldest
        report.newest = ts if report.newest is None or ts > report.newest else report.newest

    report.walk = _walk(source, wallet, max_pages, on_row)
    report.transactions = len(per_tx)
    report.rows_per_tx = dict(sorted(Counter(per_tx.values()).items()))
    report.identical_fills = sum(n - 1 for n in occurrences.values() if n > 1)
    report.mismatched_user = mismatched
    if taker_only_source is not None:
        report.taker_only_rows = _walk(taker_only_source, wallet, max_pages).rows
    return report
