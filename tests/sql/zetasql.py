"""Static checks of BigQuery SQL with ZetaSQL (BigQuery's SQL front end), for the tests.

`ensure_installed()` fetches the pinned `@fivetrandevelopers/zetasql` with `npm pack` (no install scripts exist and
none run; the package's JavaScript client and its dependencies are not needed), checks the tarball against the pinned
integrity, unpacks only the Linux x86-64 "local service" binary and the .proto files (90 of the package's 346 MB) into
`<repo>/.cache/zetasql/<version>` (git-ignored) and generates Python gRPC stubs there with grpc_tools.protoc.
`Analyzer` runs the binary on a free loopback port and analyses SQL against the tables it was given.

Language options, BigQuery's as far as ZetaSQL models them: the service's maximum feature set (every released feature:
QUALIFY, JSON, NUMERIC/BIGNUMERIC, SAFE. calls, dashes in table names, ...) less FEATURE_EXTENDED_TYPES (INT32, UINT64,
FLOAT, ENUM are not BigQuery's), plus FEATURE_INTERVAL_TYPE, GROUPING SETS and GROUPING(), which BigQuery has;
PRODUCT_EXTERNAL (BigQuery's type names, no internal-only types); NAME_RESOLUTION_DEFAULT (no qualified names needed);
every statement kind (an empty supported list). A backticked `a.b.c` is one identifier to ZetaSQL but a path to
BigQuery, so a table is registered under every grouping of its parts: `a.b.c`, `a`.`b.c`, `a.b`.c and a.b.c resolve.

Scripts are parsed whole (a syntax error anywhere fails it, as in BigQuery), then each statement is analysed in turn,
errors located in the script's lines and columns:
- DECLARE: the type is resolved, a DEFAULT checked as assignable to it (or it gives the type); the variables then
  resolve by name in later statements, as typed named constants of the catalog;
- SET x = e, SET (a, b) = e: analysed as an assignment to a system variable of x's type (ZetaSQL's coercion rules);
- BEGIN TRANSACTION, COMMIT, ROLLBACK and every other statement: analysed as written; a table made by
  CREATE ... AS SELECT is known to the script's later statements (not to later calls);
- IF, LOOP, WHILE, FOR, BEGIN ... END and EXCEPTION blocks: the statements inside are analysed, the conditions are not,
  a FOR variable is unknown and a block's variables outlive it. Not checked: that DECLAREs come first, that a
  transaction is closed, and anything that only running the script shows.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import weakref
from collections.abc import Iterator
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

PACKAGE, VERSION = "@fivetrandevelopers/zetasql", "1.13.0"
INTEGRITY = "sha512-yX9Apa968np2Tc+Hrf4Bf6Gz77kQVLIDLaNwovM91VBwyDTDF1C6oglUqmlU6Fe5/TVCExsnIueWiPahrYEITQ=="
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "zetasql" / VERSION
BINARY = CACHE / "remote_server.so"  # the package's Linux x86-64 build (remote_server is macOS's, *_arm* arm64's)
why = ""  # why the last ensure_installed() returned None
SYSTEM_VARIABLES = {  # BigQuery's, for scripts (cloud.google.com/bigquery/docs/reference/system-variables)
    **dict.fromkeys(["current_job_id", "dataset_id", "last_job_id", "project_id", "session_id", "time_zone"], "STRING"),
    **dict.fromkeys(
        ["error.message", "error.statement_text", "error.formatted_stack_trace", "script.job_id"], "STRING"
    ),
    "error.stack_trace": "ARRAY<STRUCT<line INT64, column INT64, filename STRING, location STRING>>",
    **dict.fromkeys(["row_count", "script.bytes_billed", "script.bytes_processed", "script.slot_ms"], "INT64"),
    "script.creation_time": "TIMESTAMP",
}


class Unavailable(Exception):
    """ZetaSQL cannot run here; the message names what is missing."""


def install() -> Path:
    """The local-service binary, installed first if need be. Unavailable where node, npm or the binary is missing."""
    if (CACHE / "complete").exists():
        return BINARY
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        raise Unavailable(f"{PACKAGE} has no local-service binary for {platform.system()} {platform.machine()} here")
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not on PATH (needed to fetch {PACKAGE} from the npm registry)")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent, prefix=f".{VERSION}-") as tmp:
        npm = ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--ignore-scripts", "--silent"]
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
        _run(npm, env=env)
        tgz = next(Path(tmp).glob("*.tgz"))
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if digest != INTEGRITY:
            raise RuntimeError(f"{tgz.name} is {digest}, not the pinned {INTEGRITY}")
        with tarfile.open(tgz) as tar:
            wanted = [m for m in tar if m.name == "package/lib/zetasql/remote_server.so" or "/protos/" in m.name]
            if not any(m.name.endswith(".so") for m in wanted):
                raise Unavailable(f"{PACKAGE}@{VERSION} has no Linux x86-64 binary")
            tar.extractall(tmp, members=wanted, filter="data")
        tgz.unlink()
        lib = Path(tmp) / "package" / "lib" / "zetasql"
        (lib / "remote_server.so").chmod(0o755)
        (lib / "stubs").mkdir()
        protos = sorted(str(p.relative_to(lib / "protos")) for p in (lib / "protos").rglob("*.proto"))
        protoc = [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=../stubs"]
        _run([*protoc, "--grpc_python_out=../stubs", *protos], cwd=lib / "protos")
        (lib / "complete").write_text(f"{PACKAGE}@{VERSION}\n")
        try:
            lib.rename(CACHE)
        except OSError:  # another process got there first
            if not (CACHE / "complete").exists():
                raise
    return BINARY


def _run(command: list[str], **kwargs: Any) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({done.returncode}): {done.stderr[-2000:]}")


def ensure_installed() -> Path | None:
    """`install()`, or None (the reason in `why`) where ZetaSQL cannot run here."""
    global why
    try:
        return install()
    except Unavailable as e:
        why = str(e)
        return None


def _stubs() -> Any:
    if str(CACHE / "stubs") not in sys.path:
        sys.path.insert(0, str(CACHE / "stubs"))  # the generated modules import each other as zetasql.public...
    names = "local_service_pb2 local_service_pb2_grpc zetasql.proto.options_pb2 zetasql.public.options_pb2"
    names += " zetasql.proto.simple_catalog_pb2 zetasql.public.simple_table_pb2 zetasql.public.simple_constant_pb2"
    names += " zetasql.public.type_pb2 zetasql.public.parse_resume_location_pb2"
    short = {n: n.replace("zetasql.public.", "").replace("zetasql.proto.", "proto_") for n in names.split()}
    return type("Stubs", (), {s: importlib.import_module(n) for n, s in short.items()})


def _stop(proc: subprocess.Popen[bytes], log: Any) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def _node(msg: Any) -> Any:
    while msg.DESCRIPTOR.name.startswith("Any"):  # AnyASTStatementProto etc. hold the real node in a oneof
        msg = getattr(msg, msg.WhichOneof("node"))
    return msg


def _span(msg: Any) -> slice:
    """Where a parse-tree node is in the SQL, in bytes."""
    msg = _node(msg)
    while msg.DESCRIPTOR.name != "ASTNodeProto":
        msg = msg.parent
    return slice(msg.parse_location_range.start, msg.parse_location_range.end)


def _bodies(msg: Any) -> Iterator[Any]:
    """The statement lists of a compound statement (not looking into its expressions)."""
    for field, value in msg.ListFields():
        for v in [] if field.message_type is None else [value] if isinstance(value, Message) else value:
            if v.DESCRIPTOR.name == "ASTStatementListProto":
                yield v
            elif not v.DESCRIPTOR.name.startswith("AnyASTExpression"):
                yield from _bodies(v)


class Analyzer:
    """A running ZetaSQL local service and the tables to analyse against."""

    def __init__(self, binary: Path | None = None, timeout: float = 30.0) -> None:
        import grpc

        binary = binary or install()
        self._grpc, self.pb = grpc, _stubs()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _stop)
        proc = subprocess.Popen([str(binary), "127.0.0.1", str(port)], stdout=log, stderr=subprocess.STDOUT)
        self._stop = weakref.finalize(self, _stop, proc, log)
        limits = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=limits)
        deadline = time.monotonic() + timeout
        while True:
            try:
                grpc.channel_ready_future(self._channel).result(timeout=0.2)
                break
            except grpc.FutureTimeoutError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read()[-2000:]
                    self.close()
                    raise RuntimeError(f"the ZetaSQL local service did not start: {output!r}") from None
        self._api, o = self.pb.local_service_pb2_grpc.ZetaSqlLocalServiceStub(self._channel), self.pb.options_pb2
        most = self._api.GetLanguageOptions(self.pb.local_service_pb2.LanguageOptionsRequest(maximum_features=True))
        features = [f for f in most.enabled_language_features if f != o.FEATURE_EXTENDED_TYPES]
        features += [o.FEATURE_INTERVAL_TYPE, o.FEATURE_V_1_4_GROUPING_SETS, o.FEATURE_V_1_4_GROUPING_BUILTIN]
        self.language = self.pb.proto_options_pb2.LanguageOptionsProto(
            product_mode=o.PRODUCT_EXTERNAL, name_resolution_mode=o.NAME_RESOLUTION_DEFAULT,
            enabled_language_features=features,
        )  # fmt: skip
        self._tables: dict[tuple[str, ...], list[Any]] = {}
        self._types: dict[str, Any] = {}
        self._system: list[Any] = []  # (self.type needs it)
        variable = self.pb.proto_options_pb2.AnalyzerOptionsProto.SystemVariableProto
        self._system = [variable(name_path=n.split("."), type=self.type(t)) for n, t in SYSTEM_VARIABLES.items()]

    def close(self) -> None:
        self._channel.close()
        self._stop()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def type(self, sql_type: str) -> Any:
        """The TypeProto of a type as BigQuery SQL writes it ("INT64", "ARRAY<STRUCT<a STRING, b DATE>>"), or
        ValueError."""
        if sql_type not in self._types:
            request = self.pb.local_service_pb2.AnalyzeRequest(
                options=self._options({}),
                simple_catalog=self._catalog({}, {}),
                sql_expression=f"CAST(NULL AS {sql_type})",
            )
            try:
                self._types[sql_type] = _node(self._api.Analyze(request).resolved_expression).parent.type
            except self._grpc.RpcError as e:  # located in CAST(NULL AS ...): drop that
                raise ValueError(f"{e.details().rsplit(' [at ', 1)[0]} (in type {sql_type})") from None
        return self._types[sql_type]

    def register_table(self, name: str, columns: list[tuple[str, str]]) -> None:
        """A table by its full name, `project.dataset.table` (backticks optional), and its (column, type) list."""
        cols = [self.pb.simple_table_pb2.SimpleColumnProto(name=c, type=self.type(t)) for c, t in columns]
        self._tables[tuple(name.strip("`").split("."))] = cols

    def analyze(self, sql: str, params: dict[str, str] | None = None) -> list[str]:
        """ZetaSQL's errors for a statement or a script (none: it passes); `params` types the named parameters."""
        ls, errors = self.pb.local_service_pb2, []
        try:
            request = ls.ParseRequest(sql_statement=sql, options=self.language, allow_script=True)
            script = self._api.Parse(request).parsed_script
        except self._grpc.RpcError as e:
            return [e.details()]
        text, variables, tables = sql.encode(), {}, dict(self._tables)
        types = {k: self.type(v) for k, v in (params or {}).items()}

        def where(pos: int) -> str:
            line_start = text.rfind(b"\n", 0, pos) + 1  # ZetaSQL counts columns in characters
            line = text.count(b"\n", 0, pos) + 1
            return f"{line}:{len(text[line_start:pos].decode()) + 1}"

        def run(start: int, head: bytes = b"", end: int = -1, target: Any = None) -> Any:
            """Analyse the statement at `start`, its bytes up to `end` replaced by `head` and blanks (lines kept)."""
            end = max(start, end)  # (a head longer than what it replaces moves the rest of that line right)
            blank = bytes(b if b == 10 else 32 for b in text[start:end])
            source = text[:start] + head + b"\n" * blank[: len(head)].count(b"\n") + blank[len(head) :] + text[end:]
            resume = self.pb.parse_resume_location_pb2.ParseResumeLocationProto(
                input=source.decode(), byte_position=start, allow_resume=True
            )
            request = ls.AnalyzeRequest(
                options=self._options(types, target), simple_catalog=self._catalog(tables, variables),
                parse_resume_location=resume,
            )  # fmt: skip
            try:
                return _node(self._api.Analyze(request).resolved_statement)
            except self._grpc.RpcError as e:
                errors.append(e.details())
                return None

        def statement(stmt: Any) -> None:
            node, start, kind = _node(stmt), _span(stmt).start, _node(stmt).DESCRIPTOR.name
            if kind == "ASTVariableDeclarationProto":
                default = _span(node.default_value).start if node.HasField("default_value") else None
                if node.HasField("type"):
                    try:
                        declared = self.type(text[_span(node.type)].decode())
                    except ValueError as e:
                        errors.append(f"{str(e).rsplit(' (in type ', 1)[0]} [at {where(_span(node.type).start)}]")
                        return
                    if default is not None:
                        run(start, b"SET @@v=", default, declared)
                elif (query := run(start, b"SELECT", default)) is None:
                    return
                else:
                    declared = query.output_column_list[0].column.type
                variables.update({i.id_string.lower(): declared for i in node.variable_list.identifier_list})
            elif kind in ("ASTSingleAssignmentProto", "ASTAssignmentFromStructProto"):
                single = kind == "ASTSingleAssignmentProto"
                names = [node.variable.id_string] if single else [i.id_string for i in node.variables.identifier_list]
                if missing := [n for n in names if n.lower() not in variables]:
                    return errors.append(f"Undeclared variable: {', '.join(missing)} [at {where(start)}]")
                t = self.pb.type_pb2
                fields = [t.StructFieldProto(field_name=n, field_type=variables[n.lower()]) for n in names]
                target = t.TypeProto(type_kind=t.TYPE_STRUCT, struct_type=t.StructTypeProto(field=fields))
                target = variables[names[0].lower()] if single else target
                run(start, b"SET @@v=", _span(node.expression if single else node.struct_expression).start, target)
            elif stmt.WhichOneof("node") == "ast_script_statement_node":  # IF, LOOP, BEGIN ... END, RAISE, ...
                for body in _bodies(node):
                    for inner in body.statement_list:
                        statement(inner)
            elif (done := run(start)) is not None and done.DESCRIPTOR.name == "ResolvedCreateTableAsSelectStmtProto":
                path = tuple(p for part in done.parent.parent.name_path for p in part.split("."))
                column = self.pb.simple_table_pb2.SimpleColumnProto
                tables[path] = [column(name=c.name, type=c.type) for c in done.parent.column_definition_list]

        for stmt in script.statement_list_node.statement_list:
            statement(stmt)
        return errors

    def _options(self, params: dict[str, Any], target: Any = None) -> Any:
        a = self.pb.proto_options_pb2.AnalyzerOptionsProto
        target_variable = [] if target is None else [a.SystemVariableProto(name_path=["v"], type=target)]
        return a(
            language_options=self.language, error_message_mode=self.pb.options_pb2.ERROR_MESSAGE_ONE_LINE,
            query_parameters=[a.QueryParameterProto(name=k, type=v) for k, v in params.items()],
            system_variables=self._system + target_variable,
        )  # fmt: skip

    def _catalog(self, tables: dict[tuple[str, ...], list[Any]], variables: dict[str, Any]) -> Any:
        catalog, table = self.pb.proto_simple_catalog_pb2.SimpleCatalogProto, self.pb.simple_table_pb2.SimpleTableProto
        root = catalog()
        for path, columns in tables.items():
            for k in range(len(path)):  # each grouping of the parts: a.b.c -> a.b.c; a, b.c; a.b, c; a, b, c
                for cuts in combinations(range(1, len(path)), k):
                    names = [".".join(path[i:j]) for i, j in pairwise([0, *cuts, len(path)])]
                    node = root
                    for name in names[:-1]:
                        found = [c for c in node.catalog if c.name == name]
                        node = found[0] if found else node.catalog.add(name=name)
                    node.table.append(table(name=names[-1], column=columns))
        root.constant.extend(
            self.pb.simple_constant_pb2.SimpleConstantProto(name_path=[n], type=t) for n, t in variables.items()
        )
        root.builtin_function_options.language_options.CopyFrom(self.language)
        return root
