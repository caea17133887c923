"""What IAM must allow for one recorded call, through the table in tests/infra/permissions.py: resource
names as IAM conditions see them, and the statements of a BigQuery job with the tables each reads and
writes (a query job is one `jobs.insert` whatever its SQL does; a load job names its destination and
source objects)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.infra.permissions import LOAD, METHODS, STATEMENTS, Rule


@dataclass(frozen=True)
class Need:
    permission: str
    resource: str
    why: str  # the API method (and statement) that needs it


def object_name(bucket: str, name: str) -> str:
    return f"projects/_/buckets/{bucket}/objects/{name}"


def table_name(ref: dict[str, str] | str) -> str:
    if isinstance(ref, str):
        project, dataset, table = ref.strip("`").split(".")
    else:
        project, dataset, table = ref["projectId"], ref["datasetId"], ref["tableId"]
    return f"projects/{project}/datasets/{dataset}/tables/{table}"


def rules(
    key: str, where: dict[str, Any], table: tuple[Rule, ...] | None = None, why: str | None = None
) -> tuple[Need, ...]:
    """The needs of METHODS[key] (or of `table`), `where` naming the resource of each part of the call."""
    out = []
    for permission, on in table if table is not None else METHODS[key]:
        targets = where.get(on)
        for resource in [targets] if isinstance(targets, str) else targets or []:
            if resource:
                out.append(Need(permission, resource, why or key))
    return tuple(out)


def load_job(load: dict[str, Any], method: str) -> tuple[tuple[str, ...], tuple[Need, ...]]:
    target = table_name(load["destinationTable"])
    sources = [object_name(*u.removeprefix("gs://").split("/", 1)) for u in load.get("sourceUris", [])]
    where: dict[str, Any] = {"target": target, "target-dataset": target.rsplit("/tables/", 1)[0], "source": sources}
    if load.get("writeDisposition") == "WRITE_TRUNCATE":
        where["target-truncated"] = target
    where["source-wildcard"] = [s for s in sources if "*" in s]
    summary = f"LOAD {short(target)} <- {len(sources)} object(s)"
    return (summary,), rules("LOAD", where, LOAD, why=f"{method}: {summary}")


# -- SQL: statements, their kind and tables ----------------------------------------------------------

_KINDS = [
    (re.compile(r"^(?:BEGIN|COMMIT|ROLLBACK)\b"), "TRANSACTION"),
    (re.compile(r"^CREATE\s+OR\s+REPLACE\s+TABLE\s+(`[^`]+`)"), "CREATE OR REPLACE TABLE"),
    (re.compile(r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(`[^`]+`)"), "CREATE TABLE"),
    (re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(`[^`]+`)"), "DROP TABLE"),
    (re.compile(r"^MERGE\s+(?:INTO\s+)?(`[^`]+`)"), "MERGE"),
    (re.compile(r"^INSERT\s+(?:INTO\s+)?(`[^`]+`)"), "INSERT"),
    (re.compile(r"^UPDATE\s+(`[^`]+`)"), "UPDATE"),
    (re.compile(r"^DELETE\s+(?:FROM\s+)?(`[^`]+`)"), "DELETE"),
    (re.compile(r"^DECLARE\b"), "DECLARE"),
    (re.compile(r"^SET\b"), "SET"),
    (re.compile(r"^(?:SELECT|WITH|\()"), "SELECT"),
]
# A table this analysis would not see: FROM/JOIN/INTO/USING followed by anything but a backquoted name,
# a subquery or UNNEST (our SQL names every table `project.dataset.table`; it has no CTEs). Refused.
_BARE = re.compile(r"\b(?:FROM|JOIN|INTO|USING)\s+(?![`(]|UNNEST\b)(\S+)")


def statements_of(sql: str) -> list[str]:
    """A script's statements, comments and string literals blanked (our SQL has no `;` inside either)."""
    text = re.sub(r"--[^\n]*", " ", sql)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    return [s.strip() for s in text.split(";") if s.strip()]


def analyse_sql(sql: str, method: str) -> tuple[tuple[str, ...], tuple[Need, ...]]:
    summaries, needs = [], []
    for statement in statements_of(sql):
        upper = statement.upper()
        kind, target = next(((k, m) for p, k in _KINDS if (m := p.match(upper))), (None, None))
        if kind is None:
            raise AssertionError(f"a statement of no known kind: {statement[:200]}")
        tables = [table_name(t) for t in dict.fromkeys(re.findall(r"`([^`.]+\.[^`.]+\.[^`.]+)`", statement))]
        if bare := _BARE.findall(upper):
            raise AssertionError(f"a table not named `project.dataset.table`, unseen by the analysis: {bare}")
        written = table_name(statement[target.start(1) : target.end(1)]) if target and target.groups() else None
        read = [t for t in tables if t != written]
        where: dict[str, Any] = {"read": read}
        if written:
            where |= {"target": written, "target-dataset": written.rsplit("/tables/", 1)[0]}
        summary = " ".join(
            [kind, *([short(written)] if written else []), *(["<-", ", ".join(map(short, read))] if read else [])]
        )
        summaries.append(summary)
        needs += rules(kind, where, STATEMENTS[kind], why=f"{method}: {summary}")
    return tuple(summaries), tuple(needs)


def short(resource: str | None) -> str:
    """projects/P/datasets/D/tables/T -> D.T (staging tables' random suffixes kept)."""
    return "/".join(resource.split("/")[3::2]).replace("/", ".") if resource else ""
