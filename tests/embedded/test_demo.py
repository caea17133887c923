"""`backfill demo` end to end (a small universe), and the ground-truth check it relies on.

The demo's own verdict is not trusted: the test opens the DuckDB file it left and checks it again,
then damages a copy to prove the check notices a missing, a duplicated and an invented row.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb
import pytest

from emulators.context_truth import read_truth, verify_context
from emulators.demo import INVALID_LINE
from emulators.truth import verify_dome, verify_polymarket

pytestmark = pytest.mark.slow


VERIFY = {"dome": verify_dome, "polymarket": verify_polymarket}


@pytest.fixture(scope="module", params=sorted(VERIFY))
def source(request):
    return request.param


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, source):
    directory = tmp_path_factory.mktemp(f"demo-{source}")
    argv = [sys.executable, "-m", "emulators.demo", "--dir", str(directory), "--size", "8", "--source", source]
    proc = subprocess.run([*argv, "--whale-trades", "4000"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 duplicates, 0 missing, 0 extra" in proc.stderr
    return directory


def _only(directory, pattern):
    (path,) = directory.glob(pattern)
    return path


def test_demo_leaves_an_exact_warehouse_and_dead_letters_the_invalid_line(demo_dir, source):
    db, truth = _only(demo_dir, "demo-*.duckdb"), _only(demo_dir, "ground-truth-*.jsonl")
    con = duckdb.connect(str(db), read_only=True)
    try:
        check = VERIFY[source](con, str(truth))
        letters = con.execute(
            "SELECT wallet, error_class, error FROM dead_letters ORDER BY wallet NULLS LAST"
        ).fetchall()
        tables = {t: _rows(con, t) for t in ("markets", "events", "lookup_misses")}
        statuses = dict(con.execute("SELECT status, count(*) FROM checkpoints GROUP BY ALL").fetchall())
        truth_rows = sum(1 for _ in truth.open())
    finally:
        con.close()
    assert check.exact and check.warehouse_rows == truth_rows > 4000
    assert statuses == {"complete": check.wallets}
    poison = next(
        line["condition_id"] for line in read_truth(str(_only(demo_dir, "markets-*.jsonl"))) if line.get("fails")
    )
    assert [(w, c) for w, c, _ in letters] == [(INVALID_LINE, "InvalidWallet"), (None, "SourceUnavailable")]
    assert "address" in letters[0][2].lower() and poison in letters[1][2]  # each with its reason
    # markets and events, checked here again from the files the demo left (after its second run)
    context = verify_context(
        markets=tables["markets"],
        events=tables["events"],
        misses=[(r["kind"], r["key"]) for r in tables["lookup_misses"]],
        letters=[type("Letter", (), {"data": e})() for _, _, e in letters],
        market_truth=read_truth(str(_only(demo_dir, "markets-*.jsonl"))),
        event_truth=read_truth(str(_only(demo_dir, "events-*.jsonl"))),
        source=source,
    )
    assert context.exact and context.markets.expected > 100 and context.events.expected > 20, context


def _rows(con, table):
    result = con.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def test_the_check_notices_a_missing_a_duplicated_and_an_invented_row(demo_dir, source, tmp_path):
    db = tmp_path / "damaged.duckdb"
    shutil.copy(_only(demo_dir, "demo-*.duckdb"), db)
    truth = _only(demo_dir, "ground-truth-*.jsonl")
    con = duckdb.connect(str(db))
    try:
        victim = con.execute("SELECT trade_key FROM trades ORDER BY trade_key LIMIT 1").fetchone()[0]
        copied = con.execute("SELECT trade_key FROM trades ORDER BY trade_key DESC LIMIT 1").fetchone()[0]
        con.execute("DELETE FROM trades WHERE trade_key = ?", [victim])
        con.execute(
            "INSERT INTO trades SELECT * REPLACE (trade_key || '-copy' AS trade_key) FROM trades WHERE trade_key = ?",
            [copied],
        )
        con.execute(
            """INSERT INTO trades SELECT * REPLACE (trade_key || '-x' AS trade_key, price + 0.001 AS price)
               FROM trades WHERE trade_key = ?""",
            [copied],
        )
        check = VERIFY[source](con, str(truth))
    finally:
        con.close()
    assert (check.missing, check.duplicates, check.extra) == (1, 1, 2)
    assert not check.exact
