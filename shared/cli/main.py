"""`backfill`: the pipeline in one process, into DuckDB (the default) or BigQuery.

backfill run --wallets FILE --db PATH [--workers N] [--source dome|polymarket]
backfill run --wallets FILE --warehouse bigquery --project P --dataset D [--bucket gs://B]
backfill sync --wallets FILE --db PATH [--lookback 1d]   (new wallets backfilled, complete ones synced)
backfill status --db PATH                      (or --warehouse bigquery --project P --dataset D)
backfill dead-letters list|replay --db PATH
backfill verify --db PATH [--requeue] [--json]  (every complete wallet: checkpoint = warehouse = API)
backfill probe --wallet W [--source polymarket]
"""

from __future__ import annotations

import sys

import typer

from shared.cli import operate, probe, run, verify

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
letters_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead letters.")
app.add_typer(letters_app, name="dead-letters")
app.command()(run.run)
app.command()(run.sync)
app.command()(operate.status)
app.command()(probe.probe)
app.command("verify")(verify.verify_command)
letters_app.command("list")(operate.letters_list)
letters_app.command("replay")(operate.letters_replay)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
