"""`backfill probe`: page one wallet and count what a careful client must handle."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.bootstrap import make_source
from shared.cli.options import SourceOption, console, load_settings
from shared.core.errors import InvalidWallet, PipelineError
from shared.core.wallets import normalize_wallet
from shared.probe import probe as run_probe


def probe(
    wallet: Annotated[str, typer.Option("--wallet", help="The wallet to page.")],
    source: SourceOption = None,
    max_pages: Annotated[int | None, typer.Option("--max-pages", min=1, help="Stop after this many pages.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Page one wallet and print counts: pages, rows, maker/taker, rows per transaction, identical fills."""
    settings = load_settings(source)
    try:
        address = normalize_wallet(wallet)
    except InvalidWallet as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    main_source = make_source(settings)
    # The Data API's default, taker_only=true: what a client that forgets the flag gets.
    taker_only = make_source(settings, taker_only=True) if settings.trade_source == "polymarket" else None
    try:
        report = run_probe(main_source, address, max_pages=max_pages, taker_only_source=taker_only)
    except PipelineError as exc:
        console.print(f"[red]probe failed: {exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        main_source.close()
        if taker_only is not None:
            taker_only.close()
    if as_json:
        print(json.dumps({**asdict(report), "maker_rows": report.maker_rows}))
        return
    walk = report.walk
    table = Table(title=f"probe {report.source}: {address}", show_header=False)
    rows = [
        ("pages", f"{walk.pages}{' (stopped at --max-pages)' if walk.truncated else ''}"),
        ("rows", f"{walk.rows:,}"),
        ("requests", f"{walk.requests} ({walk.retries} retried, {walk.rate_limited} answered 429)"),
        ("seconds", f"{walk.seconds:.1f}"),
    ]
    if report.taker_only_rows is not None:
        rows += [
            ("rows with taker_only=true (API default)", f"{report.taker_only_rows:,}"),
            ("maker rows (missed by the default)", f"{report.maker_rows:,}"),
        ]
    per_tx = ", ".join(f"{k}: {v}" for k, v in report.rows_per_tx.items())
    rows += [
        ("transactions", f"{report.transactions:,}"),
        ("rows per transaction -> transactions", per_tx or "-"),
        ("identical fills within a transaction", str(report.identical_fills)),
        ("rows without a transaction hash", str(report.without_tx_hash)),
        ("combo rows", str(report.combo_rows)),
        ("rows of another user", str(report.mismatched_user)),
        ("oldest .. newest", f"{report.oldest or '-'} .. {report.newest or '-'}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
