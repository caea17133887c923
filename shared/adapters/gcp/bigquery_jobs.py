"""What the BigQuery warehouse's jobs need besides their SQL: typed query parameters, deterministic
load job ids, the script variables that let a MERGE prune partitions, and the mapping of job
failures to the taxonomy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from google.api_core import exceptions as gexc
from google.cloud.bigquery import ArrayQueryParameter, ScalarQueryParameter, StructQueryParameter

from shared.adapters.gcp.clients import reasons, translate
from shared.adapters.sql.dialect import ParamType, Struct
from shared.core.errors import PermanentError, PipelineError, TransientError, WarehouseUnavailable

# How far a fill's timestamp may move between two reads of the same key and still be matched. Keys with
# a timestamp in them (Dome fingerprints, Polymarket) cannot move at all; a Dome (tx_hash, log_index) is
# one on-chain log, whose block time moves only if a reorg re-mines the transaction (seconds or minutes).
PRUNE_MARGIN_DAYS = 7


def load_job_id(uris: Iterable[str]) -> str:
    """The load job of a set of part files: the same files, in any order, give the same id."""
    return "load_" + hashlib.sha256("\n".join(sorted(uris)).encode()).hexdigest()[:32]


def query_parameter(name: str | None, type_: ParamType, value: Any) -> Any:
    """One typed BigQuery parameter from the SQL base's (type, value)."""
    if isinstance(type_, Struct):
        rows = [
            StructQueryParameter(None, *(query_parameter(f.name, f.type, row[f.name]) for f in type_.fields))
            for row in value
        ]
        return ArrayQueryParameter(name, "STRUCT", rows)
    if type_.startswith("ARRAY<"):
        return ArrayQueryParameter(name, type_[len("ARRAY<") : -1], list(value))
    return ScalarQueryParameter(name, type_, value)


def prune_bounds(rows_table: str) -> str:
    """Script variables for the trades MERGE: the batch's timestamp range (widened by the margin) and its
    wallets. BigQuery prunes partitions only on constant filters of the partitioning column
    (cloud.google.com/bigquery/docs/querying-partitioned-tables); a join condition such as
    `t.timestamp = s.timestamp` is not one, a script variable set before the MERGE is. A batch with a NULL
    timestamp (no source writes one: both require an integer) prunes no partition."""
    unbounded = "COUNTIF(r.`timestamp` IS NULL) > 0"
    return f"""DECLARE prune_from TIMESTAMP;
DECLARE prune_to TIMESTAMP;
DECLARE batch_wallets ARRAY<STRING>;
SET prune_from = (
  SELECT IF({unbounded}, TIMESTAMP '0001-01-01 00:00:00+00',
            TIMESTAMP_SUB(MIN(r.`timestamp`), INTERVAL {PRUNE_MARGIN_DAYS} DAY))
  FROM {rows_table} AS r);
SET prune_to = (
  SELECT IF({unbounded}, TIMESTAMP '9999-12-31 23:59:59.999999+00',
            TIMESTAMP_ADD(MAX(r.`timestamp`), INTERVAL {PRUNE_MARGIN_DAYS} DAY))
  FROM {rows_table} AS r);
SET batch_wallets = (SELECT ARRAY_AGG(DISTINCT r.wallet_address) FROM {rows_table} AS r);"""


# The ON condition that uses them: the target scan reads the batch's months and wallets, not the whole
# table; rows with a NULL timestamp stay matchable (their partition is read too).
PRUNE = """
  AND t.wallet_address IN UNNEST(batch_wallets)
  AND (t.`timestamp` BETWEEN prune_from AND prune_to OR t.`timestamp` IS NULL)"""


class ErrorMap:
    """Map client failures to the taxonomy: a part file BigQuery cannot read is permanent (for that
    file), 5xx/timeouts transient, auth and anything else about the warehouse systemic."""

    def __init__(self, doing: str, uris: list[str]) -> None:
        self.doing = doing
        self.uris = uris

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, PipelineError) or not isinstance(exc, Exception):
            return False
        mapped = translate(exc, self.doing, WarehouseUnavailable) or self._about_input(exc)
        raise mapped from exc

    def _about_input(self, exc: Exception) -> PipelineError:
        what = f"{self.doing}: {type(exc).__name__}: {exc}"
        if not isinstance(exc, gexc.GoogleAPICallError):
            return TransientError(what)
        text = " ".join([str(exc), *(str(e) for e in (getattr(exc, "errors", None) or []))])
        if "concurrent update" in text or reasons(exc) & {"jobRateLimitExceeded", "rateLimitExceeded"}:
            return TransientError(what)  # a transaction cancelled by a concurrent one: retry
        named = [u for u in self.uris if u in text]
        if self.uris and (named or (reasons(exc) & {"invalid", "notFound"} and "reading data" in text)):
            return PermanentError(f"part file cannot be loaded: {exc}", uri=", ".join(named or self.uris))
        return WarehouseUnavailable(what)
