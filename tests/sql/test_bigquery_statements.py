"""Every statement the BigQuery warehouse sends, exactly as it sends it, checked by ZetaSQL.

The adapter (BigQueryWarehouse and the dead-letter table over it) is driven through every method of
its ports against the BigQuery emulator, with a client that records each query job's text and typed
parameters and each load job's destination and schema. Each recorded statement is then analysed with
the tables of the table spec (shared/core/tables.py) under realistic names, the staging tables as the
load jobs and the CTAS statements before it made them, and the parameters' BigQuery types.

Nothing here is a hand-kept list of statements: the drive must reach every function of statements.py,
loadpath.py, letters.py, lookups.py and verify.py that builds SQL (returns Sql or statement text), the
script pieces of bigquery_jobs.py, and every public method of the warehouse and dead-letter classes — a new one fails
`test_the_drive_reaches_every_statement_builder` until `drive()` calls it.
"""

from __future__ import annotations

import inspect
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import CodeType, FrameType, ModuleType
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.adapters.gcp import bigquery_jobs
from shared.adapters.gcp.bigquery import BigQueryWarehouse
from shared.adapters.gcp.storage import GcsObjectStore
from shared.adapters.sources.markets import dome_event, dome_market
from shared.adapters.sql import letters, loadpath, lookups, statements, verify
from shared.adapters.sql.deadletters import SqlDeadLetters
from shared.adapters.sql.warehouse import SqlWarehouse
from shared.core.messages import DeadLetter, FileReady, LookupReady, LookupTask, WalletTask, decode
from shared.core.tables import TABLES, TRADERS
from shared.handlers.fetch import fetch
from shared.handlers.load import load
from shared.handlers.lookups import fetch_lookup
from shared.ports.publisher import Topic
from tests.embedded.conftest import RecordingPublisher
from tests.fakes import FakeClock, FakeTradeSource, budget
from tests.gcp.session import session_stack
from tests.sql import zetasql as zs

W1, W2, W3 = "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "3" * 40
BUILDERS = (statements, loadpath, letters, lookups, verify)  # every function here returning SQL must be reached
SCRIPT_PIECES = (bigquery_jobs.prune_bounds,)
NO_SQL = {"create_schema", "check_schema", "close"}  # API calls (tables, datasets), not statements


@dataclass
class Sent:
    """One query job as the client sent it: its text and its parameters' BigQuery types."""

    sql: str
    params: dict[str, str]
    doing: str = ""


@dataclass
class Recording:
    queries: list[Sent] = field(default_factory=list)
    loads: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # destination -> its schema
    doing: str = ""


def bigquery_type(param: Any) -> str:
    """The BigQuery type of a query parameter, as the job carries it."""
    if isinstance(param, bigquery.ScalarQueryParameter):
        return param.type_
    if isinstance(param, bigquery.StructQueryParameter):
        return "STRUCT<" + ", ".join(f"`{n}` {t}" for n, t in param.struct_types.items()) + ">"
    if isinstance(param, bigquery.ArrayQueryParameter):
        if param.array_type != "STRUCT":
            return f"ARRAY<{param.array_type}>"
        assert param.values, f"{param.name}: an empty array of structs carries no element type"
        return f"ARRAY<{bigquery_type(param.values[0])}>"
    raise TypeError(f"unknown query parameter {param!r}")


class RecordingClient(bigquery.Client):
    """The BigQuery client, recording what each job sends before sending it."""

    recording: Recording

    def query(self, query: str, job_config: Any = None, *args: Any, **kwargs: Any) -> Any:
        params = {p.name: bigquery_type(p) for p in (job_config.query_parameters if job_config else [])}
        self.recording.queries.append(Sent(query, params, self.recording.doing))
        return super().query(query, job_config, *args, **kwargs)

    def load_table_from_uri(self, source_uris: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        self._record_load(destination, kwargs.get("job_config"))
        return super().load_table_from_uri(source_uris, destination, *args, **kwargs)

    def load_table_from_file(self, file_obj: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        self._record_load(destination, kwargs.get("job_config"))
        return super().load_table_from_file(file_obj, destination, *args, **kwargs)

    def _record_load(self, destination: Any, config: Any) -> None:
        self.recording.loads[str(destination)] = [(f.name, f.field_type) for f in config.schema]


@dataclass
class Drive:
    recording: Recording
    reached: set[CodeType]
    project: str
    dataset: str
    external_traders: str
    failed: dict[str, str]  # steps the emulator could not run, and why


def watched_code() -> dict[CodeType, str]:
    """The code objects the drive must run: SQL builders, script pieces, the port methods."""
    out = {f.__code__: f"{m.__name__}.{f.__name__}" for m in BUILDERS for f in builders(m)}
    out.update({f.__code__: f"bigquery_jobs.{f.__name__}" for f in SCRIPT_PIECES})
    for used, defined in ((BigQueryWarehouse, (SqlWarehouse, BigQueryWarehouse)), (SqlDeadLetters, (SqlDeadLetters,))):
        for name in {n for cls in defined for n, f in vars(cls).items() if inspect.isfunction(f)}:
            if not name.startswith("_") and name not in NO_SQL:  # the method the adapter really runs
                out[getattr(used, name).__code__] = f"{used.__name__}.{name}"
    out.update({BigQueryWarehouse.transaction.__code__: "BigQueryWarehouse.transaction"})
    out.update({BigQueryWarehouse._stage_meta.__code__: "BigQueryWarehouse._stage_meta"})
    return out


def builders(module: ModuleType) -> list[Callable[..., Any]]:
    """The module's own public functions that return a statement (Sql, or its text)."""
    return [
        f
        for name, f in vars(module).items()
        if inspect.isfunction(f)
        and f.__module__ == module.__name__
        and not name.startswith("_")
        and inspect.signature(f).return_annotation in ("Sql", "str")
    ]


def drive(stack: Any) -> Drive:
    """Every port method of the BigQuery warehouse and its dead-letter table, against the emulator."""
    recording, suffix = Recording(), uuid.uuid4().hex[:8]
    client = RecordingClient(
        project=stack.project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=stack.bigquery_endpoint),
    )
    client.recording = recording
    project, dataset = stack.project, f"polymarket_{suffix}"
    wh = BigQueryWarehouse(client, project, dataset, f"{dataset}_staging", request_timeout=10, job_timeout=60)
    wh.create_schema()
    external = f"{project}.crm_{suffix}.wallets"  # an operator's own table of wallets
    client.create_dataset(f"{project}.crm_{suffix}")
    client.create_table(bigquery.Table(external, schema=[bigquery.SchemaField("wallet_address", "STRING")]))
    theirs = BigQueryWarehouse(client, project, dataset, f"{dataset}_staging", traders_table=external)

    bucket = f"sql-{suffix}"
    stack.storage_client().create_bucket(bucket)
    store = GcsObjectStore(stack.storage_client(), bucket, timeout=10, retry_deadline=5)
    clock = FakeClock(wall=datetime(2026, 1, 1, tzinfo=UTC))
    now, until = clock.now(), clock.now() + timedelta(hours=6)
    reached: set[CodeType] = set()
    watched = watched_code()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in watched:
            reached.add(frame.f_code)

    letters_table = SqlDeadLetters(wh, clock)
    letter = DeadLetter(topic="wallets", data="{}", error_class="InvalidWallet", error="bad", wallet=W3)

    def commit() -> None:
        publisher, source = RecordingPublisher(), FakeTradeSource({W1: 30, W2: 5})
        for wallet in (W1, W2):
            task: WalletTask | None = WalletTask(run_id="r1", wallet=wallet)
            while task is not None:
                out = fetch(task, source=source, store=store, publisher=publisher, clock=clock, budget=budget(2))
                task = out.continuation
        files = [decode(FileReady, d) for d in publisher.on(Topic.FILES)]
        result = load(files, warehouse=wh, store=store, clock=clock)
        if result.failed or result.untrusted:
            raise AssertionError(f"the batch did not commit: {result.failed or result.untrusted}")

    def lookup() -> None:
        """A markets lookup and an events lookup, fetched and loaded as the services do."""
        publisher = RecordingPublisher()
        for kind, keys in (("markets", (C1, C2)), ("events", ("e-one",))):
            task = LookupTask(kind=kind, run_id="r1", keys=keys)
            fetch_lookup(task, source=FakeMarkets(), store=store, publisher=publisher, clock=clock)
        files = [decode(LookupReady, d) for d in publisher.on(Topic.FILES)]
        result = load(files, warehouse=wh, store=store, clock=clock)
        if result.failed or result.untrusted:
            raise AssertionError(f"the lookups did not commit: {result.failed or result.untrusted}")

    stale, miss = now - timedelta(hours=6), now - timedelta(days=1)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("add_traders", lambda: wh.add_traders([W1, W2, W3])),
        ("load: commit_batch", commit),
        ("candidates", lambda: list(wh.candidates(now, 10))),
        ("candidates, sync", lambda: list(wh.candidates(now, 10, source="dome", sync_before=now))),
        ("source_conflicts", lambda: wh.source_conflicts("polymarket")),
        ("in_flight", lambda: wh.in_flight(now)),
        ("lease", lambda: wh.lease([(W1, "r1"), (W3, "r1")], now, until, "in_flight")),
        ("claim", lambda: wh.claim([(W2, "r2"), (W3, "r2")], now, until, "token-1")),
        ("unclaim", lambda: wh.unclaim("token-1", [W2])),
        ("release_leases", wh.release_leases),
        ("segments", lambda: wh.segments({(W1, "r1"), (W2, "r1")})),
        ("status", lambda: wh.status(now)),
        ("status, sync due", lambda: wh.status(now, sync_before=now)),
        ("complete_wallets: verify's walk", lambda: wh.complete_wallets(None, 10)),
        ("complete_wallets: named, after a key", lambda: wh.complete_wallets(W1, 10, [W1, W2, W3])),
        ("put a dead letter", lambda: letters_table.put(letter)),
        ("pending letters", lambda: letters_table.pending(10)),
        ("pending letters, filtered", lambda: letters_table.pending(10, error_class="InvalidWallet", wallet=W3)),
        ("mark_replayed", lambda: letters_table.mark_replayed([letter])),
        ("letter depth", letters_table.depth),
        ("all letters", letters_table.all),
        ("market candidates", lambda: wh.lookup_candidates("markets", now, stale, miss, 10)),
        ("claim lookups", lambda: wh.claim_lookups("markets", [C1, C2], now, until, "token-2")),
        ("load: commit_lookups", lookup),
        ("event candidates", lambda: wh.lookup_candidates("events", now, stale, miss, 10)),
        ("forget_wallets: a transaction with parameters", lambda: wh.forget_wallets([W2])),
        ("external traders: candidates", lambda: list(theirs.candidates(now, 10))),
        ("external traders: source_conflicts", lambda: theirs.source_conflicts("dome")),
        ("external traders: status", lambda: theirs.status(now)),
    ]
    failed: dict[str, str] = {}
    sys.setprofile(profile)
    try:
        for name, step in steps:
            recording.doing = name
            try:
                step()
            except Exception as exc:  # recorded: the statements it sent are still analysed
                failed[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        sys.setprofile(None)
    return Drive(recording, reached, project, dataset, external, failed)


@pytest.fixture(scope="module")
def driven(request: pytest.FixtureRequest, zetasql: zs.Analyzer) -> Drive:
    # (the zetasql fixture first: where ZetaSQL cannot run, the module skips before the emulators start)
    return drive(session_stack(request))


@pytest.fixture
def analyzer(zetasql: zs.Analyzer, driven: Drive) -> zs.Analyzer:
    for table in TABLES:
        zetasql.register_table(
            f"{driven.project}.{driven.dataset}.{table.name}", [(c.name, c.type) for c in table.columns]
        )
    zetasql.register_table(driven.external_traders, [(c.name, c.type) for c in TRADERS.columns[:1]])
    for destination, columns in driven.recording.loads.items():  # the load jobs' staging tables
        zetasql.register_table(destination, columns)
    return zetasql


CTAS = re.compile(r"^CREATE OR REPLACE TABLE (`[^`]+`) AS SELECT ", re.IGNORECASE)


def with_its_tables(queries: list[Sent], i: int) -> tuple[str, dict[str, str]]:
    """Statement `i` with the CTAS statements before it that made tables it reads (staging tables made by
    an earlier job: ZetaSQL learns their columns from the CTAS itself), and all their parameters."""
    sent, before = queries[i], []
    for earlier in queries[:i]:
        made = CTAS.match(earlier.sql)
        if made and made.group(1) in sent.sql:
            before.append(earlier)
    sql = "".join(f"{b.sql};\n" for b in before) + sent.sql
    params = {k: v for b in [*before, sent] for k, v in b.params.items()}
    return sql, params


def test_the_drive_reaches_every_statement_builder(driven: Drive) -> None:
    missing = sorted(name for code, name in watched_code().items() if code not in driven.reached)
    assert missing == [], f"add calls that run these to drive() in {__file__}: {missing}"
    assert {f.__name__ for f in builders(statements)} >= {"candidates", "claim", "lease", "status_totals"}
    assert {f.__name__ for f in builders(loadpath)} == {
        "merge_trades",
        "merge_parts",
        "merge_checkpoints",
        "merge_market_refs",
    }


def test_every_statement_the_adapter_sends_passes_zetasql(analyzer: zs.Analyzer, driven: Drive) -> None:
    queries = driven.recording.queries
    kinds = {re.match(r"\s*(\w+(?: \w+)?)", q.sql).group(1).upper() for q in queries}  # type: ignore[union-attr]
    assert {"SELECT COUNT", "MERGE INTO", "DELETE FROM", "UPDATE", "CREATE OR", "DECLARE PRUNE_FROM"} <= kinds
    assert len(queries) >= 30
    problems = []
    for i, sent in enumerate(queries):
        sql, params = with_its_tables(queries, i)
        for error in analyzer.analyze(sql, params):
            first = " ".join(sent.sql.split())[:90]
            problems.append(f"statement #{i} ({sent.doing}: {first}...): {error}")
    assert not problems, "ZetaSQL rejects what the adapter sends:\n" + "\n".join(problems)
    assert not driven.failed, f"the emulator could not run: {driven.failed}"


def mutations(sql: str, columns: set[str]) -> Iterator[tuple[str, str]]:
    """The statement with one column name misspelt, and with one keyword misspelt."""
    # Not an alias a statement defines (`@now AS now` names a column, it refers to none).
    words = [m for m in re.finditer(r"(?<![@\w])(?<!AS )(\w+)(?!\w)", sql) if m.group(1) in columns]
    if words:
        m = words[-1]  # the last use: a reference to a column (the first may be an alias it defines)
        yield f"column {m.group(1)}", sql[: m.start()] + m.group(1) + "_x" + sql[m.end() :]
    keyword = re.search(r"\b(SELECT|DELETE|UPDATE|MERGE INTO)\b", sql)
    assert keyword, sql
    yield f"keyword {keyword.group(1)}", sql[: keyword.start()] + keyword.group(1)[:-1] + sql[keyword.end() - 1 :][1:]


def test_a_misspelt_column_or_keyword_in_any_statement_is_reported(analyzer: zs.Analyzer, driven: Drive) -> None:
    """The check has teeth for each statement: a wrong column name or a typo is an error, not a pass."""
    columns = {c.name for t in TABLES for c in t.columns} | {
        name for schema in driven.recording.loads.values() for name, _ in schema
    }
    queries = driven.recording.queries
    passed = []
    for i, sent in enumerate(queries):
        sql, params = with_its_tables(queries, i)
        prefix = sql[: len(sql) - len(sent.sql)]
        for what, wrong in mutations(sent.sql, columns):
            if not analyzer.analyze(prefix + wrong, params):
                passed.append(f"#{i} with a misspelt {what}: {sent.sql[:100]}")
    assert passed == []


C1, C2 = "0x" + "c1" * 32, "0x" + "c2" * 32


class FakeMarkets:
    """A market source at the edge: C1 known, C2 unknown (a miss), one event."""

    name = "dome"

    def markets(self, condition_ids, fetched_at):
        return [dome_market(_DOME_MARKET, fetched_at)] if C1 in condition_ids else []

    def events(self, slugs, fetched_at):
        return [dome_event({"event_slug": "e-one", "title": "One", "status": "open", "market_count": 1}, fetched_at)]


_DOME_MARKET = {
    "condition_id": C1, "market_slug": "m", "event_slug": "e-one", "title": "Will it?", "status": "closed",
    "start_time": 1_700_000_000, "end_time": 1_700_086_400, "completed_time": 1_700_086_400, "tags": ["a"],
    "volume_total": 1.0, "side_a": {"id": "1", "label": "Yes"}, "side_b": {"id": "2", "label": "No"},
    "winning_side": "Yes",
}  # fmt: skip
