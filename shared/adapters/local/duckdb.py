"""The embedded warehouse: one DuckDB file with the tables of the one spec (shared/core/tables.py).

One process writes it (DuckDB locks the file); inside the process every statement takes one lock, and
`commit_batch` is a single transaction that reads the part files with `read_json` — all or nothing,
even under SIGKILL (the WAL). The statements are the SQL base's (shared/adapters/sql/); this file only
says how DuckDB runs them.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb

from shared.adapters.sql import loadpath as lp
from shared.adapters.sql import statements as st
from shared.adapters.sql.dialect import DUCKDB, Sql, Struct
from shared.adapters.sql.warehouse import SqlWarehouse
from shared.core.chain import Segment
from shared.core.errors import PermanentError, SchemaMismatch, SystemicError, TransientError, WarehouseUnavailable
from shared.core.tables import TABLES, TRADE_ROW, TRADES, Column, Table
from shared.ports.warehouse import CheckpointUpdate

log = logging.getLogger(__name__)


class _NoPandas(importlib.abc.MetaPathFinder):
    """DuckDB's client tries `import pandas` at every statement with parameters (a DataFrame may be one).
    Without pandas installed, each try walks sys.path: a dozen stat calls, each letting go of the GIL and
    waiting to take it back behind the fetch workers (5% of the loader's time in a whale's run, py-spy).
    This finder, first on sys.meta_path, fails that import at once, as the path finders would have.
    (Not `sys.modules["pandas"] = None`: pyarrow's pandas shim reads that entry and breaks on None.)"""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")
        return None


if importlib.util.find_spec("pandas") is None and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
    sys.meta_path.insert(0, _NoPandas())


def _read_parts(files: str, columns: tuple[Column, ...] = TRADE_ROW) -> str:
    """The part files as a relation, with their columns' types given (never inferred)."""
    spec = "{" + ", ".join(f"'{c.name}': '{c.duckdb}'" for c in columns) + "}"
    return f"read_json({files}, format = 'newline_delimited', columns = {spec})"


# Memory (docs/benchmarks.md, "Memory flat in the warehouse's size"). DuckDB's buffer manager keeps every
# block it has read or written (the table's, a batch's) up to `memory_limit`, by default 80% of the RAM:
# without a limit the run's memory grows with the warehouse it merges into. Under MEMORY_LIMIT_MB the
# table's blocks are evicted (they are on disk) and temporary data spills to `<file>.tmp`. A batch holds its
# rows (the JSON reader's 32 MiB buffer while it stages them, the staged rows, the join, its new rows) and
# cannot spill them all, so the limit is sized for a batch of BATCH_ROWS rows, one statement at a time: the
# runner splits its batches to that many rows (`batch_rows`), a larger batch (one part of more than 10 pages:
# FETCH_MAX_PAGES) gets a limit in proportion, and a transaction that still runs out of memory is tried again
# with more room (MORE_ROOM).
MEMORY_LIMIT_MB = 56  # 48 fails merges of 10,000 rows; 64 left the 1,000,000-trade wallet at 254 MB
BATCH_ROWS = 10_000  # one part of the embedded runner's 10 pages
CHECKPOINT_THRESHOLD_MB = 128  # WAL size that folds it into the file (about 150,000 trade rows)
# A transaction that ran out of memory is tried again under these multiples of its limit, the smallest
# first: the few that fail miss by a few MB, and each retry's room is the run's peak (2x at once: +56 MB).
MORE_ROOM = (1.25, 2.0)
LOCK_WAIT_SECONDS = 5.0


def ddl(table: Table) -> str:
    """The table with its key as a PRIMARY KEY, except trades: the MERGE keeps one row per key there (as
    it does on BigQuery, which enforces no key), because an index over its random trade keys is an ART as
    large as the table's keys that every batch touches all over: a working set that grows with the table."""
    columns = [f'"{c.name}" {c.duckdb}' for c in table.columns]
    key = "" if table is TRADES else f", PRIMARY KEY ({', '.join(table.key)})"
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(columns)}{key})"


def _connect(path: str, read_only: bool) -> Any:
    """The file's connection. Its lock may be held for a moment by a killed run's warehouse process,
    which dies with its runner (WarehouseProcess) but not in the same instant: wait for it that long."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise SystemicError(f"cannot open {path}: {exc}") from None
            if time.monotonic() >= deadline:
                raise FileLocked(f"cannot open {path}: {exc} (is another backfill using it?)") from None
            time.sleep(0.05)


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise PermanentError(f"the embedded warehouse reads local files, not {parsed.scheme}:// ({uri})", uri=uri)
    return unquote(parsed.path) if parsed.scheme else uri


def _bound(sql: str, params: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The parameters `sql` names (DuckDB refuses unused named parameters)."""
    return {name: value for name, (_, value) in params.items() if f"${name}" in sql}


class DuckDBWarehouse(SqlWarehouse):
    d = DUCKDB
    batch_rows = BATCH_ROWS

    def __init__(self, path: str | Path, *, must_exist: bool = False, read_only: bool = False) -> None:
        """`must_exist`: refuse to create the file (an operator's command with a mistyped --db must not
        leave an empty warehouse behind); `read_only`: open it without taking the writer's lock."""
        self.path = str(path)
        self.names = st.Names(DUCKDB)
        if self.path != ":memory:":
            if (must_exist or read_only) and not Path(self.path).is_file():
                raise SchemaMismatch(f"no warehouse at {self.path}")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.con = _connect(self.path, read_only=read_only and self.path != ":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        # One writer merges small batches (10-page parts): more threads buy no speed here and cost memory
        # (about 50 MB at the peak of a whale's run, measured with bench/throughput.py).
        self.con.execute("SET threads = 1")
        # A checkpoint compresses into the file what the WAL holds, the table's last row group (122,880
        # rows) again each time while it fills: at DuckDB's 16 MiB a checkpoint came every ~3 batches and
        # was half the loader's time. A transaction is fsynced to the WAL at its commit either way.
        self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD_MB}MB'")
        # An in-memory warehouse (tests) is all buffers: a limit would fail it, not bound it.
        self.memory_limit_mb = MEMORY_LIMIT_MB if self.path != ":memory:" else None
        self.lock = threading.RLock()
        self._limit_mb = 0
        self._set_limit(self.memory_limit_mb)

    def _set_limit(self, mb: int | None) -> None:
        if mb is not None:
            with self.lock:
                self.cursor().execute(f"SET memory_limit = '{int(mb)}MB'")
                self._limit_mb = mb

    @contextmanager
    def _room(self, mb: int) -> Iterator[None]:
        """A memory limit of at least `mb` while inside (an in-memory warehouse has none)."""
        if self.memory_limit_mb is None or mb <= self._limit_mb:
            yield
            return
        before = self._limit_mb
        self._set_limit(mb)
        try:
            yield
        finally:
            self._set_limit(before)

    def close(self) -> None:
        self.con.close()

    def cursor(self) -> Any:
        try:
            return self.con.cursor()
        except duckdb.ConnectionException as exc:
            raise WarehouseUnavailable(f"the DuckDB file {self.path} is not open: {exc}") from None

    # -- schema -----------------------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the spec's tables, and add the columns a file from an older version lacks."""
        self.check_schema(allow_missing=True)
        with self.lock:
            cur = self.cursor()
            for table in TABLES:
                cur.execute(ddl(table))
                for c in table.columns:
                    cur.execute(f'ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS "{c.name}" {c.duckdb}')

    def check_schema(self, allow_missing: bool = False) -> None:
        have: dict[str, dict[str, str]] = {}
        for table, column, type_ in (
            self.cursor()
            .execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'main'"
            )
            .fetchall()
        ):
            have.setdefault(table, {})[column] = type_
        for table in TABLES:
            columns = have.get(table.name)
            if columns is None:
                if allow_missing:
                    continue
                raise SchemaMismatch(f"{self.path} has no table {table.name!r}: not a backfill warehouse")
            wrong = [
                f"{c.name} is {columns[c.name]}, not {c.duckdb}"
                for c in table.columns
                if c.name in columns and columns[c.name] != c.duckdb.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
            ]
            missing_key = [k for k in table.key if k not in columns]
            missing = [c.name for c in table.columns if c.name not in columns]
            if wrong or missing_key or (missing and not allow_missing):
                problems = "; ".join([*wrong, *(f"no column {m}" for m in missing_key or missing)])
                raise SchemaMismatch(
                    f"{self.path}: table {table.name!r} is not the backfill's ({problems}); "
                    "use another --db or move this file away"
                )

    # -- running statements ------------------------------------------------------------------------------

    def query(self, sql: Sql) -> Iterator[dict[str, Any]]:
        # Under the one lock too: a read beside a merge would want room under the memory limit at the same
        # moment (the limit is sized for one statement at a time). The results read here are small.
        with self.lock, _errors():
            cur = self.cursor()
            cur.execute(sql.text, _bound(sql.text, sql.params))
            if cur.description is None:  # a statement that returns no rows
                return
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        for row in rows:
            yield dict(zip(names, row, strict=True))

    def execute(self, sql: Sql) -> int:
        with self.lock, _errors():
            row = self.cursor().execute(sql.text, _bound(sql.text, sql.params)).fetchone()
        return int(row[0]) if row else 0

    def transaction(self, statements: list[str], sql: Sql) -> None:
        with self.lock:
            base = self._limit_mb
            for factor in (1.0, *MORE_ROOM):
                try:
                    with self._room(math.ceil(base * factor)):
                        self._transaction(statements, sql)
                    return
                except OutOfMemory as exc:
                    if factor == MORE_ROOM[-1]:
                        raise
                    log.warning("a transaction ran out of memory; trying it again with more room: %s", exc)

    def _transaction(self, statements: list[str], sql: Sql) -> None:
        """`sql.text` stages what the statements read (temporary tables of this cursor, gone with it)."""
        with self.lock:
            cur = self.cursor()
            files: list[str] = sql.params["files"][1] if "files" in sql.params else []
            try:
                with _errors(files):
                    if sql.text:
                        cur.execute(sql.text, _bound(sql.text, sql.params))
                cur.execute("BEGIN TRANSACTION")
                try:
                    with _errors(files):
                        for text in statements:
                            cur.execute(text, _bound(text, sql.params))
                        cur.execute("COMMIT")
                except BaseException:
                    _rollback(cur)
                    raise
            finally:
                cur.close()

    @contextmanager
    def staged_batch(
        self, uris: list[str], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> Iterator[tuple[lp.Batch, Sql]]:
        paths = [_path(u) for u in uris]
        for path, uri in zip(paths, uris, strict=True):
            if not Path(path).is_file():
                raise PermanentError(f"part file is missing: {path}", uri=uri)
        d = self.d
        # The part files are read once, into a temporary table both MERGEs read: each read_json holds a
        # 32 MiB buffer, and a second read parsed every line again.
        stage = f"CREATE TEMP TABLE staged_rows AS SELECT * FROM {_read_parts('$files')}" if paths else ""
        batch = lp.Batch(
            rows="staged_rows AS r",
            parts=d.unnest("parts", "{a}", Struct(lp.PART_FIELDS)),
            checkpoints=d.unnest("checkpoints", "{a}", Struct(lp.CHECKPOINT_FIELDS)),
            now=d.p("now", "TIMESTAMP"),
        )
        params: dict[str, tuple[Any, Any]] = {
            "files": ("ARRAY<STRING>", paths),
            "parts": (Struct(lp.PART_FIELDS), lp.part_rows(segments)),
            "checkpoints": (Struct(lp.CHECKPOINT_FIELDS), lp.checkpoint_rows(checkpoints)),
            "now": ("TIMESTAMP", now),
        }
        loaded = set(uris)
        with self._room(MEMORY_LIMIT_MB * sum(s.rows for s in segments if s.uri in loaded) // BATCH_ROWS):
            yield batch, Sql(stage, params)

    @contextmanager
    def staged_rows(self, uris: list[str], columns: tuple[Column, ...]) -> Iterator[tuple[str, Sql]]:
        """The part files read where they lie, with their columns' types given (never inferred)."""
        paths = [_path(u) for u in uris]
        for path, uri in zip(paths, uris, strict=True):
            if not Path(path).is_file():
                raise PermanentError(f"part file is missing: {path}", uri=uri)
        relation = f"{_read_parts('$files', columns)} AS r"
        yield relation, Sql("", {"files": ("ARRAY<STRING>", paths)})


class FileLocked(SystemicError):
    """Another process holds the file's lock (another backfill, or a killed runner's warehouse process
    that has not yet exited)."""


class OutOfMemory(WarehouseUnavailable):
    """DuckDB could not allocate under its memory limit (systemic, unless a retry with more room succeeds)."""


def _rollback(cur: Any) -> None:
    """Roll back what is open; a transaction DuckDB already aborted has nothing left to roll back, and
    that second error must not hide the first."""
    with contextlib.suppress(duckdb.Error):
        cur.execute("ROLLBACK")


@contextmanager
def _errors(files: list[str] | None = None) -> Iterator[None]:
    """DuckDB's failures in the taxonomy: a part file it cannot read is that file's (permanent, so the
    loader isolates it); a conflict is transient; a failure to write — a full disk, a lost file — or
    to allocate stops the run (systemic): no part file is to blame for it."""
    try:
        yield
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise PermanentError(f"a part file could not be read: {exc}") from None
    except duckdb.TransactionException as exc:
        if "conflict" in str(exc).lower():
            raise TransientError(f"transaction conflict: {exc}") from None
        raise WarehouseUnavailable(f"the DuckDB file cannot be written: {exc}") from None  # "Failed to commit"
    except duckdb.IOException as exc:
        if any(path in str(exc) for path in files or ()):
            raise PermanentError(f"a part file could not be read: {exc}") from None
        raise WarehouseUnavailable(f"the DuckDB file cannot be written: {exc}") from None
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemory(f"DuckDB failed: {type(exc).__name__}: {exc}") from None
    except duckdb.FatalException as exc:
        raise WarehouseUnavailable(f"DuckDB failed: {type(exc).__name__}: {exc}") from None
