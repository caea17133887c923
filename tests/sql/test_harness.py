"""The ZetaSQL harness itself: it passes BigQuery SQL that is right and reports SQL that is wrong."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.sql import zetasql as zs

TRADES = "proj.ds.trades"
LEASES = "proj.ds.leases"
ROWS = "proj.staging.rows_batch"
LEASE_PARAMS = {
    "reason": "STRING",
    "now": "TIMESTAMP",
    "until": "TIMESTAMP",
    "leases": "ARRAY<STRUCT<wallet_address STRING, run_id STRING, idx INT64>>",
}
MERGE_LEASES = f"""
MERGE `{LEASES}` AS t
USING (
  SELECT x.wallet_address, x.run_id, @reason AS reason, @now AS leased_at, @until AS lease_until
  FROM UNNEST(@leases) AS x
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY x.wallet_address ORDER BY x.idx DESC) = 1
) AS s
ON t.wallet_address = s.wallet_address
WHEN MATCHED THEN UPDATE SET
  run_id = s.run_id, reason = s.reason, leased_at = s.leased_at, lease_until = s.lease_until
WHEN NOT MATCHED THEN INSERT (wallet_address, run_id, reason, leased_at, lease_until)
VALUES (s.wallet_address, s.run_id, s.reason, s.leased_at, s.lease_until)"""
SCRIPT = f"""DECLARE prune_from TIMESTAMP;
DECLARE prune_to TIMESTAMP;
DECLARE batch_wallets ARRAY<STRING>;
SET prune_from = (SELECT TIMESTAMP_SUB(MIN(r.`timestamp`), INTERVAL 7 DAY) FROM `{ROWS}` AS r);
SET prune_to = (SELECT TIMESTAMP_ADD(MAX(r.`timestamp`), INTERVAL 7 DAY) FROM `{ROWS}` AS r);
SET batch_wallets = (SELECT ARRAY_AGG(DISTINCT r.wallet_address) FROM `{ROWS}` AS r);
BEGIN TRANSACTION;
MERGE `{TRADES}` AS t
USING (
  SELECT r.wallet_address, r.trade_key, r.log_index, r.`timestamp`, @now AS ingested_at FROM `{ROWS}` AS r
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY r.wallet_address, r.trade_key ORDER BY r.run_id) = 1
) AS s
ON t.wallet_address = s.wallet_address AND t.trade_key = s.trade_key
  AND t.wallet_address IN UNNEST(batch_wallets)
  AND (t.`timestamp` BETWEEN prune_from AND prune_to OR t.`timestamp` IS NULL)
WHEN NOT MATCHED THEN INSERT (wallet_address, trade_key, log_index, `timestamp`, ingested_at)
VALUES (s.wallet_address, s.trade_key, s.log_index, s.`timestamp`, s.ingested_at);
{MERGE_LEASES};
COMMIT TRANSACTION;
"""
SCRIPT_PARAMS = LEASE_PARAMS  # @now and the lease MERGE's


def at(sql: str, needle: str) -> str:
    """ZetaSQL's position suffix for the first `needle` in `sql`."""
    before = sql[: sql.index(needle)]
    return f"[at {before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}]"


@pytest.fixture
def bq(zetasql: zs.Analyzer) -> zs.Analyzer:
    zetasql.register_table(
        TRADES,
        [("wallet_address", "STRING"), ("trade_key", "STRING"), ("log_index", "INT64"), ("timestamp", "TIMESTAMP"),
         ("price", "FLOAT64"), ("is_combo", "BOOL"), ("raw", "JSON"), ("amount", "NUMERIC"), ("day", "DATE"),
         ("digest", "BYTES"), ("tags", "ARRAY<STRING>"), ("fill", "STRUCT<maker STRING, size FLOAT64>"),
         ("ingested_at", "TIMESTAMP")],
    )  # fmt: skip
    zetasql.register_table(
        LEASES,
        [("wallet_address", "STRING"), ("run_id", "STRING"), ("reason", "STRING"), ("leased_at", "TIMESTAMP"),
         ("lease_until", "TIMESTAMP")],
    )  # fmt: skip
    zetasql.register_table(
        ROWS,
        [("wallet_address", "STRING"), ("trade_key", "STRING"), ("log_index", "INT64"), ("timestamp", "TIMESTAMP"),
         ("run_id", "STRING")],
    )  # fmt: skip
    return zetasql


def test_a_right_select_passes_and_an_unknown_column_is_reported(bq: zs.Analyzer) -> None:
    assert bq.analyze(f"SELECT wallet_address, log_index FROM `{TRADES}`") == []
    errors = bq.analyze(f"SELECT wallet_adress, log_index FROM `{TRADES}`")
    assert len(errors) == 1
    assert "Unrecognized name: wallet_adress" in errors[0] and "[at 1:8]" in errors[0]


def test_a_parameter_of_the_wrong_type_is_reported(bq: zs.Analyzer) -> None:
    sql = f"SELECT wallet_address FROM `{TRADES}` WHERE log_index = @n"
    assert bq.analyze(sql, {"n": "INT64"}) == []
    errors = bq.analyze(sql, {"n": "STRING"})
    assert len(errors) == 1 and "argument types: INT64, STRING" in errors[0]
    assert any("Query parameter 'n' not found" in e for e in bq.analyze(sql))


def test_an_unknown_table_is_reported(bq: zs.Analyzer) -> None:
    errors = bq.analyze("SELECT 1 FROM `proj.ds.no_such_table`")
    assert len(errors) == 1 and "Table not found: `proj.ds.no_such_table`" in errors[0]


def test_a_type_zetasql_does_not_know_is_an_error(bq: zs.Analyzer) -> None:
    with pytest.raises(ValueError, match="Type not found: INTEGER"):  # BigQuery's alias; ZetaSQL has none
        bq.register_table("proj.ds.other", [("n", "INTEGER")])
    assert bq.analyze("SELECT 1;\nDECLARE x TIMESTAP;") == ["Type not found: TIMESTAP [at 2:11]"]


@pytest.mark.parametrize("name", ["`proj.ds.trades`", "`proj`.`ds`.`trades`", "`proj`.`ds.trades`", "proj.ds.trades"])
def test_a_table_resolves_by_each_of_bigquerys_spellings_of_its_path(bq: zs.Analyzer, name: str) -> None:
    assert bq.analyze(f"SELECT t.log_index FROM {name} AS t") == []
    assert bq.analyze(f"SELECT t.log_index FROM {name.replace('ds', 'dx')} AS t") != []


def test_a_merge_with_qualify_and_unnest_of_a_parameter_passes(bq: zs.Analyzer) -> None:
    assert bq.analyze(MERGE_LEASES, LEASE_PARAMS) == []
    # ...and the harness holds BigQuery's rules and the parameters' types to it:
    no_where = bq.analyze(MERGE_LEASES.replace("WHERE TRUE", ""), LEASE_PARAMS)
    assert len(no_where) == 1 and "QUALIFY clause must be used in conjunction with WHERE" in no_where[0]
    wrong_field = {**LEASE_PARAMS, "leases": "ARRAY<STRUCT<wallet_address STRING, run_id STRING>>"}
    errors = bq.analyze(MERGE_LEASES, wrong_field)
    assert errors == [
        f"Field name idx does not exist in STRUCT<wallet_address STRING, run_id STRING> {at(MERGE_LEASES, 'idx')}"
    ]


def test_dml_and_ctas_statements(bq: zs.Analyzer) -> None:
    assert bq.analyze(f"DELETE FROM `{LEASES}` WHERE reason = @reason", {"reason": "STRING"}) == []
    assert bq.analyze(f"UPDATE `{LEASES}` SET reason = 'done' WHERE lease_until < CURRENT_TIMESTAMP()") == []
    assert bq.analyze(f"INSERT INTO `{LEASES}` (wallet_address, run_id) VALUES ('0xab', GENERATE_UUID())") == []
    bad_insert = bq.analyze(f"INSERT INTO `{LEASES}` (wallet_address, leased_at) VALUES ('0xab', 42)")
    assert len(bad_insert) == 1 and "TIMESTAMP" in bad_insert[0]
    params = {"now": "TIMESTAMP", "parts": "ARRAY<STRUCT<uri STRING, `rows` INT64>>"}
    assert (
        bq.analyze("CREATE OR REPLACE TABLE `proj.staging.meta_1` AS SELECT @now AS now, @parts AS parts", params) == []
    )


def test_bigquery_functions_pass(bq: zs.Analyzer) -> None:
    sql = f"""
SELECT UNIX_SECONDS(MAX(t.`timestamp`)) AS newest, TIMESTAMP_SUB(MIN(t.`timestamp`), INTERVAL 7 DAY) AS since,
  COUNTIF(t.is_combo) AS combos, ARRAY_AGG(DISTINCT t.wallet_address) AS wallets, CURRENT_TIMESTAMP() AS now,
  ANY_VALUE(JSON_VALUE(t.raw, '$.side')) AS side, SUM(SAFE_CAST(t.trade_key AS INT64)) AS keys,
  SUM(t.amount) AS amount, MAX(t.fill.size) AS biggest, COUNT(tag) AS tags, GENERATE_UUID() AS id
FROM `{TRADES}` AS t LEFT JOIN UNNEST(t.tags) AS tag
WHERE t.wallet_address IN UNNEST(@wallets) AND t.day >= DATE '2024-01-01'"""
    assert bq.analyze(sql, {"wallets": "ARRAY<STRING>"}) == []
    assert (
        "Function not found: UNIX_SECOND"
        in bq.analyze(sql.replace("UNIX_SECONDS", "UNIX_SECOND"), {"wallets": "ARRAY<STRING>"})[0]
    )


def test_a_script_passes_and_a_typo_in_its_merge_is_reported(bq: zs.Analyzer) -> None:
    assert bq.analyze(SCRIPT, SCRIPT_PARAMS) == []
    typo = SCRIPT.replace("t.trade_key = s.trade_key", "t.trade_key = s.trade_kye")
    assert bq.analyze(typo, SCRIPT_PARAMS) == [f"Name trade_kye not found inside s {at(typo, 'trade_kye')}"]


def test_script_variables_are_typed(bq: zs.Analyzer) -> None:
    wrong = SCRIPT.replace("TIMESTAMP_ADD(MAX(r.`timestamp`), INTERVAL 7 DAY)", "MAX(r.log_index)")
    assert bq.analyze(wrong, SCRIPT_PARAMS) == [
        f"Expected type TIMESTAMP; found INT64 {at(wrong, '(SELECT MAX(r.log')}"
    ]
    used = bq.analyze(SCRIPT.replace("IN UNNEST(batch_wallets)", "IN UNNEST(prune_from)"), SCRIPT_PARAMS)
    assert len(used) == 1 and "must be an array but was TIMESTAMP" in used[0]
    undeclared = bq.analyze(SCRIPT.replace("DECLARE batch_wallets ARRAY<STRING>;", ""), SCRIPT_PARAMS)
    assert any("Undeclared variable: batch_wallets" in e for e in undeclared)
    assert any("Unrecognized name: batch_wallets" in e for e in undeclared)
    assert bq.analyze("DECLARE n DEFAULT 3; DECLARE s STRING DEFAULT 'a'; SET (n, s) = (n + 1, s); SELECT n * 2") == []
    assert "Expected type INT64; found STRING" in bq.analyze("DECLARE n INT64 DEFAULT 'three'")[0]


def test_statements_inside_blocks_are_analysed_and_tables_made_by_the_script_are_known(bq: zs.Analyzer) -> None:
    script = f"""CREATE TEMP TABLE picked AS SELECT wallet_address AS w FROM `{TRADES}`;
BEGIN
  SELECT w FROM picked;
EXCEPTION WHEN ERROR THEN
  SELECT @@error.message;
END;"""
    assert bq.analyze(script) == []
    errors = bq.analyze(script.replace("SELECT w FROM", "SELECT x FROM"))
    assert errors == ["Unrecognized name: x [at 3:10]"]


def test_a_syntax_error_fails_the_whole_script_with_its_position(bq: zs.Analyzer) -> None:
    typo = SCRIPT.replace("COMMIT TRANSACTION", "COMIT TRANSACTION")
    errors = bq.analyze(typo, SCRIPT_PARAMS)
    assert len(errors) == 1 and errors[0].startswith("Syntax error") and errors[0].endswith(at(typo, "COMIT"))


def test_the_install_is_pinned_and_a_second_call_is_quick(zetasql: zs.Analyzer) -> None:
    started = time.monotonic()
    assert zs.ensure_installed() == zs.BINARY
    assert time.monotonic() - started < 1
    assert (zs.CACHE / "complete").read_text().strip() == f"{zs.PACKAGE}@{zs.VERSION}"
    assert zs.VERSION[0].isdigit() and "^" not in zs.VERSION


def test_missing_node_or_npm_is_a_reason_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(zs, "CACHE", tmp_path / "cache")  # not installed there
    monkeypatch.setattr(zs, "why", "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    assert zs.ensure_installed() is None
    assert zs.why.startswith("node is not on PATH")
