"""Where DuckDB's SQL and BigQuery's differ, named once: everything else in shared/adapters/sql is text
both run as it is.

    difference            DuckDB                                   BigQuery
    identifier quotes     "user"                                   `user`
    table names           trades                                   `project.dataset.trades`
    parameters            $now                                     @now (typed by the job)
    an array parameter    unnest(CAST($w AS VARCHAR[])) AS _w(w)   UNNEST(@w) AS w
    epoch seconds         CAST(epoch(x) AS BIGINT)                 UNIX_SECONDS(x)
    a typed parameter     CAST($now AS TIMESTAMPTZ)                @now

DuckDB infers a parameter's type from the Python value, and an empty list has none: that is why its
array parameters are cast (BigQuery's are typed by the query job, shared/adapters/gcp/bigquery.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.core.tables import DUCKDB_TYPES, Column


@dataclass(frozen=True)
class Struct:
    """The type of an array parameter whose elements are rows (dicts) with these columns."""

    fields: tuple[Column, ...]


ParamType = str | Struct  # "STRING", "INT64", "TIMESTAMP", "BOOL", "ARRAY<STRING>", or an array of Struct


@dataclass(frozen=True)
class Sql:
    """One statement (or a BigQuery script) with its parameters: name -> (type, value)."""

    text: str
    params: dict[str, tuple[ParamType, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Dialect:
    name: str
    quote_char: str
    param_prefix: str

    def q(self, identifier: str) -> str:
        return f"{self.quote_char}{identifier}{self.quote_char}"

    def p(self, name: str, type_: str | None = None) -> str:
        """A parameter; with `type_`, cast where the dialect cannot type it from the value."""
        if type_ and self.name == "duckdb":
            return f"CAST(${name} AS {DUCKDB_TYPES[type_]})"
        return f"{self.param_prefix}{name}"

    def unnest(self, param: str, alias: str, element: ParamType) -> str:
        """A relation with one column `alias` per element of an array parameter (a struct: `alias.field`)."""
        if self.name == "bigquery":
            return f"UNNEST(@{param}) AS {alias}"
        return f"unnest(CAST(${param} AS {duckdb_array(element)})) AS _{alias}({alias})"

    def in_array(self, expr: str, param: str, element: str = "STRING") -> str:
        if self.name == "bigquery":
            return f"{expr} IN UNNEST(@{param})"
        return f"{expr} IN (SELECT unnest(CAST(${param} AS {duckdb_array(element)})))"

    def epoch(self, expr: str) -> str:
        return f"UNIX_SECONDS({expr})" if self.name == "bigquery" else f"CAST(epoch({expr}) AS BIGINT)"

    def columns(self, names: tuple[str, ...] | list[str], alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(f"{prefix}{self.q(n)}" for n in names)


def duckdb_array(element: ParamType) -> str:
    if isinstance(element, Struct):
        fields = ", ".join(f'"{c.name}" {c.duckdb}' for c in element.fields)
        return f"STRUCT({fields})[]"
    return f"{DUCKDB_TYPES[element]}[]"


DUCKDB = Dialect("duckdb", '"', "$")
BIGQUERY = Dialect("bigquery", "`", "@")
