"""The Warehouse port over SQL, once for both dialects (dlt's SqlJobClientBase, in small).

A dialect's adapter (DuckDBWarehouse, BigQueryWarehouse) provides only what differs:

    query(sql) / execute(sql)      run one statement with its parameters
    transaction(statements, sql)   run statements as one transaction
    staged_batch(...)              the load path's relations (part files, part records, checkpoints)
    create_schema / check_schema   DDL and its check, from the one table spec
    close

Everything else — which wallets to dispatch, leases, the chain's part records, the checkpoint rounds,
the status counts — is here and in statements.py, so the two warehouses cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.sql import letters as lt
from shared.adapters.sql import loadpath as lp
from shared.adapters.sql import lookups as lk
from shared.adapters.sql import statements as st
from shared.adapters.sql import verify as vf
from shared.adapters.sql.dialect import Dialect, Sql
from shared.core.chain import Segment
from shared.core.tables import Column
from shared.ports.warehouse import Candidate, CheckpointUpdate, Status, Stored

if TYPE_CHECKING:  # the warehouse process reads these types' objects without pydantic's 17 MB
    from shared.core.messages import FileReady, LookupReady

CHUNK = 5000  # wallets per parameterised statement (BigQuery caps a query request at 12 MB)


class SqlWarehouse:
    d: Dialect
    names: st.Names
    batch_rows: int | None = None
    """The most part-file rows one commit_batch should take (None: any); the embedded runner splits its
    loader's batches to fit. A dialect sets it when its commit holds a batch's rows in memory."""

    # -- what a dialect provides ------------------------------------------------------------------------

    def create_schema(self) -> None:
        raise NotImplementedError

    def check_schema(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def query(self, sql: Sql) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def execute(self, sql: Sql) -> int:
        """Run one statement; the rows it changed."""
        raise NotImplementedError

    def transaction(self, statements: list[str], sql: Sql) -> None:
        """Run `statements` (text) as one transaction; `sql.params` holds every parameter they use and
        `sql.text` anything that must run before the transaction begins (BigQuery's DECLAREs)."""
        raise NotImplementedError

    def staged_rows(self, uris: list[str], columns: tuple[Column, ...]) -> AbstractContextManager[tuple[str, Sql]]:
        """The rows of these part files as a relation aliased r (and the parameters it needs)."""
        raise NotImplementedError

    def staged_batch(
        self, uris: list[str], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> AbstractContextManager[tuple[lp.Batch, Sql]]:
        raise NotImplementedError

    # -- the port ---------------------------------------------------------------------------------------

    def add_traders(self, wallets: Iterable[str]) -> int:
        unique = list(dict.fromkeys(wallets))
        return sum(
            self.execute(st.add_traders(self.names, unique[i : i + CHUNK])) for i in range(0, len(unique), CHUNK)
        )

    def candidates(
        self, now: datetime, limit: int, source: str | None = None, sync_before: datetime | None = None
    ) -> Iterator[Candidate]:
        sql = st.candidates(self.names, now=now, limit=limit, source=source, sync_before=sync_before)
        for row in self.query(sql):
            yield Candidate(
                row["wallet_address"], row["run_id"], row["status"], row["newest_trade_epoch"], row["source"]
            )

    def source_conflicts(self, source: str, limit: int = 1000) -> list[tuple[str, str]]:
        return [(r["wallet_address"], r["source"]) for r in self.query(st.source_conflicts(self.names, source, limit))]

    def forget_wallets(self, wallets: list[str]) -> int:
        if not wallets:
            return 0
        dropped = sum(
            self._first(st.count_trades(self.names, wallets[i : i + CHUNK]))["n"] for i in range(0, len(wallets), CHUNK)
        )
        deletes = [
            st.forget(self.names, table, wallets) for table in ("trades", "checkpoints", "checkpoint_parts", "leases")
        ]
        self.transaction([s.text + ";" for s in deletes], Sql("", deletes[0].params))
        return int(dropped)

    def in_flight(self, now: datetime) -> int:
        return int(self._first(st.in_flight(self.names, now))["n"])

    def lease(self, leases: list[tuple[str, str]], now: datetime, until: datetime, reason: str) -> None:
        for i in range(0, len(leases), CHUNK):
            self.execute(st.lease(self.names, leases[i : i + CHUNK], reason, now, until))

    def claim(self, leases: list[tuple[str, str]], now: datetime, until: datetime, token: str) -> set[str]:
        for i in range(0, len(leases), CHUNK):
            self.execute(st.claim(self.names, leases[i : i + CHUNK], now, until, token))
        asked = {w for w, _ in leases}
        return {r["wallet_address"] for r in self.query(st.claimed(self.names, token))} & asked

    def unclaim(self, token: str, wallets: list[str]) -> None:
        for i in range(0, len(wallets), CHUNK):
            self.execute(st.unclaim(self.names, token, wallets[i : i + CHUNK]))

    def release_leases(self, reason: str = "in_flight") -> int:
        return self.execute(st.release_leases(self.names, reason))

    def segments(self, keys: Iterable[tuple[str, str]]) -> list[Segment]:
        keys = set(keys)
        wallets = sorted({w for w, _ in keys})
        out = []
        for i in range(0, len(wallets), CHUNK):
            for row in self.query(st.segments(self.names, wallets[i : i + CHUNK])):
                if (row["wallet_address"], row["run_id"]) in keys:
                    out.append(Segment(**{("wallet" if k == "wallet_address" else k): v for k, v in row.items()}))
        return out

    def commit_batch(
        self, files: list[FileReady], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None:
        self.merge_batch(sorted({f.uri for f in files if f.rows > 0}), segments, checkpoints, now)

    def merge_batch(
        self, uris: list[str], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None:
        """commit_batch with the files' rows as their part files' uris (no message objects: the warehouse
        process runs this without importing the message models)."""
        rounds = max(lp.rounds(checkpoints), default=0)
        with self.staged_batch(uris, segments, checkpoints, now) as (batch, sql):
            statements = [lp.merge_trades(self.names, batch), lp.merge_market_refs(self.names, batch)] if uris else []
            if segments:
                statements.append(lp.merge_parts(self.names, batch))
            statements += [lp.merge_checkpoints(self.names, batch, k) for k in range(1, rounds + 1)]
            self.transaction(statements, sql)

    # -- markets and events ---------------------------------------------------------------------------

    def lookup_candidates(
        self, kind: str, now: datetime, stale_before: datetime, miss_before: datetime, limit: int
    ) -> list[str]:
        build = lk.market_candidates if kind == "markets" else lk.event_candidates
        return [r["key"] for r in self.query(build(self.names, now, stale_before, miss_before, limit))]

    def claim_lookups(self, kind: str, keys: list[str], now: datetime, until: datetime, token: str) -> set[str]:
        for i in range(0, len(keys), CHUNK):
            self.execute(lk.claim(self.names, kind, keys[i : i + CHUNK], now, until, token))
        return {r["key"] for r in self.query(lk.claimed(self.names, kind, token))} & set(keys)

    def commit_lookups(self, kind: str, files: list[LookupReady], now: datetime) -> None:
        """One transaction: the files' rows into their table, the keys the API did not know recorded as
        misses, the keys it knew no longer misses."""
        uris = sorted({f.uri for f in files if f.rows > 0})
        missing = sorted({k for f in files for k in f.missing})
        found = sorted({k for f in files for k in f.keys} - set(missing))
        self.merge_lookups(kind, uris, missing, found, files[0].source if files else None, now)

    def merge_lookups(
        self, kind: str, uris: list[str], missing: list[str], found: list[str], source: str | None, now: datetime
    ) -> None:
        """commit_lookups with the files as what it reads of them (no message objects, as merge_batch)."""
        table = lk.TARGET[kind]
        with self.staged_rows(uris, table.columns) if uris else nullcontext(("", Sql(""))) as (rows, staged):
            statements = [lk.merge_rows(self.names, table, rows)] if uris else []
            if missing:
                statements.append(lk.merge_misses(self.names, kind))
            if found:
                statements.append(lk.forget_misses(self.names, kind))
            params = {
                **staged.params,
                "missing": ("ARRAY<STRING>", missing),
                "found": ("ARRAY<STRING>", found),
                "now": ("TIMESTAMP", now),
                "source": ("STRING", source),
            }
            if statements:
                self.transaction(statements, Sql(staged.text, params))

    def status(self, now: datetime, sync_before: datetime | None = None) -> Status:
        out = Status()
        for row in self.query(st.status_counts(self.names)):
            out.by_status[row["status"]] = int(row["n"])
        out.wallets_total = sum(out.by_status.values())
        totals = self._first(st.status_totals(self.names))
        out.trades, out.newest_load, out.parked = int(totals["trades"]), totals["newest_load"], int(totals["parked"])
        out.in_flight = self.in_flight(now)
        out.dead_letters = int(self._first(lt.letter_depth(self.names))["n"])
        lookups = self._first(lk.status(self.names))
        out.markets, out.unresolved_markets, out.events = lookups["markets"], lookups["unresolved"], lookups["events"]
        out.markets_not_found, out.events_not_found = lookups["markets_not_found"], lookups["events_not_found"]
        out.oldest_unresolved_fetch, out.condition_ids = lookups["oldest_unresolved_fetch"], lookups["condition_ids"]
        overdue_before = sync_before - timedelta(days=1) if sync_before is not None else None
        sync = self._first(st.sync_status(self.names, sync_before, overdue_before))
        out.oldest_sync, out.sync_due, out.sync_overdue = sync["oldest_sync"], int(sync["due"]), int(sync["overdue"])
        return out

    # -- reconciliation ---------------------------------------------------------------------------------

    def complete_wallets(self, after: str | None, limit: int, wallets: list[str] | None = None) -> list[Stored]:
        limit = min(limit, CHUNK)
        chunk = list(self.query(vf.complete_checkpoints(self.names, after, limit, wallets)))
        if not chunk:
            return []
        addresses = [r["wallet_address"] for r in chunk]
        rows = {r["wallet_address"]: int(r["n"]) for r in self.query(vf.stored_rows(self.names, addresses))}
        finals = {
            (r["wallet_address"], r["run_id"]): int(r["n"]) for r in self.query(vf.final_parts(self.names, addresses))
        }
        return [
            Stored(
                r["wallet_address"],
                r["run_id"],
                r["source"],
                int(r["trades_loaded"] or 0),
                rows.get(r["wallet_address"], 0),
                finals.get((r["wallet_address"], r["run_id"]), 0),
            )
            for r in chunk
        ]

    def _first(self, sql: Sql) -> dict[str, Any]:
        return next(iter(self.query(sql)))
